import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  KSERVE_GRPC_PROTO_PATH,
  KServeProtocolError,
  decodeInferRequest,
  encodeInferResponse,
  rawOfTensor,
  tensorFromContents,
  tensorFromRaw,
  wantsBinaryOutput,
  type GrpcTensorContents,
  type InferRequest,
  type InferResponse,
  type Tensor,
} from '@smart-routing/kserve';
import { TimeoutError } from './errors.js';
import type { InferBody, InferCallOptions, InferTransport } from './infer-transport.js';
import { ModelServerUnreachableError, TritonError } from './triton-client.js';

/**
 * Inferences over KServe v2 gRPC (`inference.GRPCInferenceService/ModelInfer`, the proto of
 * @smart-routing/kserve loaded with @grpc/proto-loader), Triton's faster endpoint:
 *
 *   typed tensors ─ rawOfTensor (views) ─▶ ModelInferRequest.raw_input_contents ─▶ server
 *   typed tensors ◀─ tensorFromRaw (one copy) ◀─ ModelInferResponse.raw_output_contents
 *   HTTP body (kserve_infer) ─ decodeInferRequest ─▶ as above ─▶ encodeInferResponse, binary
 *     where the body asked for it (`binary_data` / `binary_data_output`), as an HTTP server answers
 *
 * gRPC status -> what the handlers expect of an HTTP answer: INVALID_ARGUMENT 400, NOT_FOUND 404,
 * RESOURCE_EXHAUSTED 413 (all `TritonError`), UNAVAILABLE `ModelServerUnreachableError`,
 * DEADLINE_EXCEEDED `TimeoutError`, anything else a `TritonError` 500.
 */

/** Options of `GrpcInferTransport`. */
export interface GrpcInferTransportOptions {
  /**
   * `host:port` of the gRPC endpoint (`TRITON_GRPC_URL`), or a function giving the current one
   * (the embedded model server gets a new port when it restarts).
   */
  address: string | (() => string);
  /** Per-call deadline. Default 120 000 ms (as `TritonClient`'s `inferTimeoutMs`). */
  inferTimeoutMs?: number;
  /** Largest answer accepted, bytes. Default 64 MiB (the embedded server's `MAX_RESPONSE_BYTES`). */
  maxResponseBytes?: number;
}

type Params = Record<string, { parameter_choice?: string } & Record<string, unknown>>;

/** `ModelInferRequest` as proto-loader takes it (keepCase). */
export interface GrpcModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Params;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Params }[];
  outputs: { name: string; parameters: Params }[];
  raw_input_contents: Buffer[];
}

/** `ModelInferResponse` as proto-loader gives it (keepCase, longs as numbers, defaults). */
export interface GrpcModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Params;
  outputs: {
    name: string;
    datatype: string;
    shape: number[];
    parameters?: Params;
    contents?: GrpcTensorContents;
  }[];
  raw_output_contents: Buffer[];
}

const loaded = protoLoader.loadSync(KSERVE_GRPC_PROTO_PATH, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const Service = (
  grpc.loadPackageDefinition(loaded) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  }
).inference.GRPCInferenceService;

/** Parameters of the HTTP binary extension: they mean nothing over gRPC (raw contents always). */
const HTTP_ONLY = new Set(['binary_data', 'binary_data_output', 'binary_data_size']);

/** Plain parameters -> `map<string, InferParameter>`. */
function toParams(p: Record<string, unknown> | undefined, what: string): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(p ?? {})) {
    if (HTTP_ONLY.has(key)) continue;
    if (typeof value === 'boolean') out[key] = { bool_param: value };
    else if (typeof value === 'string') out[key] = { string_param: value };
    else if (typeof value === 'number' && Number.isSafeInteger(value)) out[key] = { int64_param: value };
    else if (typeof value === 'number' && Number.isFinite(value)) out[key] = { double_param: value };
    else
      throw new KServeProtocolError(
        `${what} parameter '${key}' must be a boolean, a number or a string to travel over gRPC`,
      );
  }
  return out;
}

/** `map<string, InferParameter>` -> plain parameters (undefined when empty). */
function fromParams(p: Params | undefined): Record<string, unknown> | undefined {
  if (!p || Object.keys(p).length === 0) return undefined;
  return Object.fromEntries(
    Object.entries(p).map(([k, v]) => [k, v.parameter_choice ? v[v.parameter_choice] : undefined]),
  );
}

/** Typed tensors -> ModelInferRequest; tensor data as raw contents (views, no copy). */
export function toModelInferRequest(model: string, request: InferRequest): GrpcModelInferRequest {
  return {
    model_name: model,
    model_version: '',
    id: request.id ?? '',
    parameters: toParams(request.parameters, 'request'),
    inputs: request.inputs.map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape,
      parameters: toParams(t.parameters, `input '${t.name}'`),
    })),
    outputs: (request.outputs ?? []).map((o) => ({
      name: o.name,
      parameters: toParams(o.parameters, `output '${o.name}'`),
    })),
    raw_input_contents: request.inputs.map(rawOfTensor),
  };
}

/**
 * ModelInferResponse -> typed tensors, from raw_output_contents (as Triton answers) or typed contents.
 * @throws KServeProtocolError when the contents do not fit the outputs.
 */
export function fromModelInferResponse(res: GrpcModelInferResponse): InferResponse {
  const raw = res.raw_output_contents ?? [];
  if (raw.length > 0 && raw.length !== res.outputs.length)
    throw new KServeProtocolError(
      `raw_output_contents has ${raw.length} entries for ${res.outputs.length} outputs`,
    );
  const outputs: Tensor[] = res.outputs.map((o, i) => {
    const t =
      raw.length > 0
        ? tensorFromRaw('output', o.name, o.datatype, o.shape, raw[i]!)
        : tensorFromContents(o.name, o.datatype, o.shape, o.contents);
    const parameters = fromParams(o.parameters);
    if (parameters) t.parameters = parameters;
    return t;
  });
  const response: InferResponse = { model_name: res.model_name, outputs };
  if (res.model_version) response.model_version = res.model_version;
  if (res.id) response.id = res.id;
  const parameters = fromParams(res.parameters);
  if (parameters) response.parameters = parameters;
  return response;
}

/**
 * An HTTP-layout answer for `request` from typed outputs: binary where the request asked for it,
 * JSON `data` otherwise, byte for byte as an HTTP model server writes it (`encodeInferResponse`).
 */
export function responseBody(request: InferRequest, response: InferResponse): InferBody {
  const message = encodeInferResponse(response, (name) => wantsBinaryOutput(request, name));
  return {
    body: Buffer.concat(message.chunks, message.byteLength),
    headerLength: message.headerLength ?? 0,
  };
}

/** KServe v2 inference over gRPC (see the file header). */
export class GrpcInferTransport implements InferTransport {
  readonly protocol = 'grpc' as const;
  private readonly addressSource: () => string;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private client: { address: string; stub: grpc.Client } | undefined;
  private closed = false;

  constructor(options: GrpcInferTransportOptions) {
    const address = options.address;
    if (typeof address === 'string') {
      checkAddress(address);
      this.addressSource = () => address;
    } else this.addressSource = address;
    this.timeoutMs = options.inferTimeoutMs ?? 120_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  }

  /** The endpoint now. */
  get address(): string {
    return this.addressSource();
  }

  async inferTensors(
    model: string,
    request: InferRequest,
    options: InferCallOptions = {},
  ): Promise<InferResponse> {
    const res = await this.call(model, toModelInferRequest(model, request), options);
    return fromModelInferResponse(res);
  }

  async inferBody(model: string, request: InferBody, options: InferCallOptions = {}): Promise<InferBody> {
    // The body's own errors are the client's, worded as a model server words them (a 400).
    let decoded: InferRequest;
    let grpcRequest: GrpcModelInferRequest;
    try {
      decoded = decodeInferRequest(request.body, {
        headerLength: request.headerLength > 0 ? request.headerLength : undefined,
        model,
      });
      grpcRequest = toModelInferRequest(model, decoded);
    } catch (err) {
      if (err instanceof KServeProtocolError)
        throw new TritonError('gRPC', `ModelInfer(${model})`, 400, err.message);
      throw err;
    }
    const res = await this.call(model, grpcRequest, options);
    return responseBody(decoded, fromModelInferResponse(res));
  }

  close(): void {
    this.closed = true;
    this.client?.stub.close();
    this.client = undefined;
  }

  /** The stub for the current address (a new one after the address moved). */
  private stub(): grpc.Client {
    const address = this.address;
    if (this.client?.address !== address) {
      this.client?.stub.close();
      const stub = new Service(address, grpc.credentials.createInsecure(), {
        // Framing on top of the tensors' bytes: leave room.
        'grpc.max_receive_message_length': this.maxResponseBytes + 64 * 1024,
        'grpc.max_send_message_length': -1,
      });
      this.client = { address, stub };
    }
    return this.client.stub;
  }

  private call(
    model: string,
    request: GrpcModelInferRequest,
    options: InferCallOptions,
  ): Promise<GrpcModelInferResponse> {
    if (this.closed) return Promise.reject(new ModelServerUnreachableError('the gRPC transport is closed'));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const stub = this.stub() as grpc.Client & {
      ModelInfer(
        req: GrpcModelInferRequest,
        options: grpc.CallOptions,
        callback: (err: grpc.ServiceError | null, res: GrpcModelInferResponse) => void,
      ): grpc.ClientUnaryCall;
    };
    const address = this.address;
    return new Promise((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = stub.ModelInfer(
        request,
        { deadline: callDeadline(this.timeoutMs, options.deadlineUnixMs) },
        (err, res) => {
          signal?.removeEventListener('abort', onAbort);
          if (!err) return resolve(res);
          if (signal?.aborted) return reject(signal.reason as Error);
          reject(this.failure(err, model, address));
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private failure(err: grpc.ServiceError, model: string, address: string): Error {
    const what = `ModelInfer(${model})`;
    const details = err.details || err.message;
    switch (err.code) {
      case grpc.status.INVALID_ARGUMENT:
        return new TritonError('gRPC', what, 400, details);
      case grpc.status.NOT_FOUND:
        return new TritonError('gRPC', what, 404, details);
      case grpc.status.RESOURCE_EXHAUSTED:
        return new TritonError('gRPC', what, 413, details);
      case grpc.status.UNAVAILABLE:
        return new ModelServerUnreachableError(`gRPC ${what} on ${address}: ${details}`, { cause: err });
      case grpc.status.DEADLINE_EXCEEDED:
        return new TimeoutError(
          `gRPC ${what} on ${address} timed out after ${this.timeoutMs} ms`,
          this.timeoutMs,
        );
      default:
        return new TritonError('gRPC', what, 500, details);
    }
  }
}

/** `host:port`, `[v6]:port`: what grpc-js takes as a plain target. */
function checkAddress(address: string): void {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s/:[\]]+):\d{1,5}$/.test(address))
    throw new TypeError(`GrpcInferTransport: address must be host:port, got ${JSON.stringify(address)}`);
}

/** When a call gives up: after `timeoutMs`, or at the task's deadline when that is sooner. */
function callDeadline(timeoutMs: number, deadlineUnixMs: number | undefined): number {
  const limit = Date.now() + timeoutMs;
  return deadlineUnixMs && deadlineUnixMs > 0 ? Math.min(limit, deadlineUnixMs) : limit;
}
