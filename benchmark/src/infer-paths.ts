import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  KSERVE_GRPC_PROTO_PATH,
  decodeInferResponse,
  encodeInferRequest,
} from '@smart-routing/kserve';
import * as ort from 'onnxruntime-node';
import { Agent, request } from 'undici';
import type { InferBenchModel } from './infer-bench-models.js';

/**
 * The ways `npm run benchmark:infer` runs one inference, all fed the same FP32 tensor:
 *
 *   (a) onnxruntime-node        in this process            session.run
 *   (b) model server            embedded server directly   POST /v2/models/{m}/infer, binary
 *   (c) /run-task infer         dispatcher, JSON           POST /run-task {parameters_json}
 *   (d) v2 HTTP front           dispatcher, binary         POST /v2/models/{m}/infer, binary
 *   (e) v2 gRPC front           dispatcher                 ModelInfer, raw_input_contents
 *
 * (b) and (d) are the same client pointed at different servers; so are the gRPC clients. Every
 * call checks that the whole output came back (its element count), so a path that answers fast
 * with an error or a truncated tensor counts as a failure, not as throughput.
 */

/** One way to run an inference. */
export interface InferPath {
  /** One inference of the prepared tensor; rejects when it fails or the output is incomplete. */
  infer(): Promise<void>;
  /** Frees the client (connections, session). Safe to call twice. */
  close(): Promise<void>;
}

const elements = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** A deterministic FP32 tensor of `shape` with values in [0, 1), the same for every path. */
export function benchTensor(shape: number[], seed = 1): Float32Array {
  const data = new Float32Array(elements(shape));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    // xorshift32: cheap, and not a constant the model could shortcut.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = (x >>> 0) / 4294967296;
  }
  return data;
}

function checkCount(got: number, model: InferBenchModel): void {
  const want = elements(model.output.shape);
  if (got !== want) throw new Error(`output '${model.output.name}' has ${got} elements, expected ${want}`);
}

/**
 * (a): onnxruntime-node in this process, on the model's file, with `sessionOptions` (pass the model
 * server's, so both run the model the same way). Default: ORT's defaults.
 */
export async function ortPath(
  file: string,
  model: InferBenchModel,
  input: Float32Array,
  sessionOptions: ort.InferenceSession.SessionOptions = {},
): Promise<InferPath> {
  const session = await ort.InferenceSession.create(file, sessionOptions);
  const feeds = { [model.input.name]: new ort.Tensor('float32', input, model.input.shape) };
  let closed = false;
  return {
    async infer() {
      const out = await session.run(feeds);
      const t = out[model.output.name];
      checkCount(t?.size ?? 0, model);
      t?.dispose();
    },
    async close() {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}

async function failure(status: number, body: { text(): Promise<string> }): Promise<Error> {
  const text = (await body.text()).slice(0, 300);
  return new Error(`HTTP ${status}: ${text}`);
}

/**
 * (b) and (d): KServe v2 HTTP infer with Triton's binary tensor extension, both ways (the input as
 * binary data, the output asked for with `binary_data: true`).
 */
export function v2HttpPath(
  baseUrl: string,
  model: InferBenchModel,
  input: Float32Array,
  connections: number,
): InferPath {
  const message = encodeInferRequest({
    inputs: [{ name: model.input.name, datatype: 'FP32', shape: model.input.shape, data: input }],
    outputs: [{ name: model.output.name, parameters: { binary_data: true } }],
  });
  // The same bytes every time: encoding is the client's cost, paid once as in a real producer's loop.
  const body = Buffer.concat(message.chunks, message.byteLength);
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (message.headerLength !== undefined)
    headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(message.headerLength);
  const url = `${baseUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(model.name)}/infer`;
  const agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  let closed = false;
  return {
    async infer() {
      const res = await request(url, { method: 'POST', dispatcher: agent, headers, body });
      if (res.statusCode !== 200) throw await failure(res.statusCode, res.body);
      const bytes = new Uint8Array(await res.body.arrayBuffer());
      const decoded = decodeInferResponse(
        bytes,
        res.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()] as string | undefined,
      );
      const out = decoded.outputs.find((o) => o.name === model.output.name);
      checkCount(out ? out.data.length : 0, model);
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
    },
  };
}

function countJson(data: unknown): number {
  return Array.isArray(data)
    ? data.reduce((n: number, v) => n + (Array.isArray(v) ? countJson(v) : 1), 0)
    : 0;
}

/** (c): the dispatcher's `/run-task` with an `infer` task, tensors as JSON numbers. */
export function runTaskPath(
  dispatcherUrl: string,
  model: InferBenchModel,
  input: Float32Array,
  connections: number,
): InferPath {
  const parameters = JSON.stringify({
    inputs: [{ name: model.input.name, datatype: 'FP32', shape: model.input.shape, data: Array.from(input) }],
    outputs: [{ name: model.output.name }],
  });
  // Escaped once; each request only splices in its own task_id.
  const tail = `,"task_type":"infer","label":${JSON.stringify(model.name)},"parameters_json":${JSON.stringify(parameters)}}`;
  const url = `${dispatcherUrl.replace(/\/+$/, '')}/run-task`;
  const agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  let n = 0;
  let closed = false;
  return {
    async infer() {
      const body = `{"task_id":"ib-${process.pid}-${n++}-${Math.random().toString(36).slice(2)}"${tail}`;
      const res = await request(url, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body,
      });
      if (res.statusCode !== 200) throw await failure(res.statusCode, res.body);
      const answer = (await res.body.json()) as {
        result?: { outputs?: { name: string; data?: unknown }[] };
      };
      const out = answer.result?.outputs?.find((o) => o.name === model.output.name);
      checkCount(countJson(out?.data), model);
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
    },
  };
}

interface ModelInferResponse {
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Buffer[];
}

type UnaryCall<Req, Res> = (
  request: Req,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

interface InferenceClient extends grpc.Client {
  ModelInfer: UnaryCall<Record<string, unknown>, ModelInferResponse>;
}

let service: grpc.ServiceClientConstructor | undefined;

/** `inference.GRPCInferenceService` from the KServe v2 `.proto`, loaded once. */
function inferenceService(): grpc.ServiceClientConstructor {
  if (!service) {
    const definition = protoLoader.loadSync(KSERVE_GRPC_PROTO_PATH, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
    };
    service = loaded.inference.GRPCInferenceService;
  }
  return service;
}

/** Largest gRPC message either way (a batch of large outputs). */
const GRPC_MAX_MESSAGE = 256 * 1024 * 1024;

/**
 * (e): KServe v2 gRPC ModelInfer with the tensor in `raw_input_contents`, on `address`
 * (`host:port`, plaintext). Each call has a deadline of `timeoutMs` (default 60 s).
 */
export function grpcPath(
  address: string,
  model: InferBenchModel,
  input: Float32Array,
  timeoutMs = 60_000,
): InferPath {
  const Client = inferenceService();
  const client = new Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': GRPC_MAX_MESSAGE,
    'grpc.max_send_message_length': GRPC_MAX_MESSAGE,
  }) as unknown as InferenceClient;
  const req = {
    model_name: model.name,
    inputs: [{ name: model.input.name, datatype: 'FP32', shape: model.input.shape }],
    outputs: [{ name: model.output.name }],
    raw_input_contents: [Buffer.from(input.buffer, input.byteOffset, input.byteLength)],
  };
  let closed = false;
  return {
    infer() {
      return new Promise<void>((resolve, reject) => {
        client.ModelInfer(req, { deadline: Date.now() + timeoutMs }, (err, res) => {
          if (err) return reject(new Error(`gRPC ${err.code} ${grpc.status[err.code]}: ${err.details}`));
          try {
            const i = res!.outputs.findIndex((o) => o.name === model.output.name);
            checkCount(i < 0 ? 0 : (res!.raw_output_contents[i]?.length ?? 0) / 4, model);
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        });
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}
