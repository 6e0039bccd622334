import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  KSERVE_GRPC_PROTO_PATH,
  rawOfTensor,
  tensorFromContents,
  tensorFromRaw,
  type GrpcTensorContents,
  type InferRequest,
  type Tensor,
} from '@smart-routing/kserve';
import type { Logger } from 'pino';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import { runInference } from './inference.js';
import type { ModelStore } from './model-store.js';
import { modelMetadataJson } from './triton-json.js';

/**
 * The KServe v2 gRPC front of the embedded server (`inference.GRPCInferenceService` from
 * `@smart-routing/kserve`'s proto, loaded with @grpc/proto-loader): the same store, validation,
 * batching and statistics as the HTTP routes. ModelInfer reads `raw_input_contents` (or typed
 * `contents`) and always answers `raw_output_contents`, as Triton does. Errors carry Triton's
 * messages with the matching gRPC code (400 -> INVALID_ARGUMENT, 404 -> NOT_FOUND,
 * 413 -> RESOURCE_EXHAUSTED, 503 -> UNAVAILABLE, else INTERNAL).
 */

/** Options of `startGrpcServer`. */
export interface GrpcServerOptions {
  store: ModelStore;
  logger: Logger;
  /** Interface to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Server name, version and extensions for ServerMetadata. */
  metadata: { name: string; version: string; extensions: string[] };
  /** Largest request message, in bytes. */
  maxRequestBytes: number;
  /** Largest encoded infer response, in bytes. */
  maxResponseBytes: number;
  /** False once the server is shutting down (ServerReady). */
  isReady: () => boolean;
}

/** A running gRPC front. */
export interface GrpcServerHandle {
  /** `host:port`, as gRPC clients take it. */
  address: string;
  port: number;
  /** Stops the server (in-flight calls get a moment). Safe to call twice. */
  close(): Promise<void>;
}

type Params = Record<string, { parameter_choice?: string } & Record<string, unknown>>;

interface GrpcInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Params;
  inputs: {
    name: string;
    datatype: string;
    shape: number[];
    parameters?: Params;
    contents?: GrpcTensorContents;
  }[];
  outputs: { name: string; parameters?: Params }[];
  raw_input_contents: Buffer[];
}

const loaded = protoLoader.loadSync(KSERVE_GRPC_PROTO_PATH, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(loaded) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
};

/** The gRPC service definition, for clients in tests and tools. */
export const GRPC_INFERENCE_SERVICE = proto.inference.GRPCInferenceService;

function plainParams(p: Params | undefined): Record<string, unknown> | undefined {
  if (!p || Object.keys(p).length === 0) return undefined;
  return Object.fromEntries(
    Object.entries(p).map(([k, v]) => [k, v.parameter_choice ? v[v.parameter_choice] : undefined]),
  );
}

const CODES: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  404: grpc.status.NOT_FOUND,
  413: grpc.status.RESOURCE_EXHAUSTED,
  503: grpc.status.UNAVAILABLE,
};

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const e =
    err instanceof ModelServerError
      ? err
      : MODEL_SERVER_ERRORS.internal(err instanceof Error ? err.message : String(err));
  return { code: CODES[e.status] ?? grpc.status.INTERNAL, details: e.message, message: e.message };
}

/** Decodes ModelInfer's inputs: all from raw_input_contents, or all from contents. */
function decodeGrpcInfer(req: GrpcInferRequest): InferRequest {
  const raw = req.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw MODEL_SERVER_ERRORS.badRequest(
      `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; use it for all inputs or none`,
    );
  }
  const request: InferRequest = {
    inputs: req.inputs.map((t, i) => {
      const tensor =
        raw.length > 0
          ? tensorFromRaw('input', t.name, t.datatype, t.shape, raw[i]!)
          : tensorFromContents(t.name, t.datatype, t.shape, t.contents);
      const parameters = plainParams(t.parameters);
      if (parameters) tensor.parameters = parameters;
      return tensor;
    }),
  };
  if (req.id) request.id = req.id;
  if (req.outputs.length > 0) request.outputs = req.outputs.map((o) => ({ name: o.name }));
  const parameters = plainParams(req.parameters);
  if (parameters) request.parameters = parameters;
  return request;
}

/** Starts the gRPC front on `host:port`. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const { store, logger } = options;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxRequestBytes,
    // The response bound is checked before sending; leave room for the message framing.
    'grpc.max_send_message_length': options.maxResponseBytes + 64 * 1024,
  });
  const unary =
    <Req, Res>(name: string, fn: (req: Req) => Promise<Res> | Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            const e = toServiceError(err);
            if (e.code === grpc.status.INTERNAL) logger.error({ event: 'grpc_call_failed', rpc: name, err });
            callback(e);
          },
        );
    };

  server.addService(GRPC_INFERENCE_SERVICE.service, {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: options.isReady() })),
    ServerMetadata: unary('ServerMetadata', () => options.metadata),
    ModelReady: unary('ModelReady', (r: { name: string; version: string }) => ({
      ready: store.isReady(r.name, r.version || undefined),
    })),
    ModelMetadata: unary('ModelMetadata', (r: { name: string; version: string }) =>
      modelMetadataJson(store.model(r.name, r.version || undefined)),
    ),
    RepositoryIndex: unary('RepositoryIndex', async (r: { ready: boolean }) => ({
      models: (await store.index(r.ready)).map((e) => ({
        name: e.name,
        version: e.version ?? '',
        state: e.state ?? '',
        reason: e.reason ?? '',
      })),
    })),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (r: { model_name: string }) => {
      await store.load(r.model_name);
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (r: { model_name: string }) => {
      await store.unload(r.model_name);
      return {};
    }),
    ModelInfer: unary('ModelInfer', (req: GrpcInferRequest) => {
      const m = store.model(req.model_name, req.model_version || undefined);
      return runInference(
        store,
        m,
        {
          decode: () => decodeGrpcInfer(req),
          encode: (model, request, outputs: Tensor[]) => {
            const raw = outputs.map(rawOfTensor);
            return {
              model_name: model.name,
              model_version: String(model.version),
              id: request.id ?? '',
              outputs: outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
              raw_output_contents: raw,
            };
          },
          byteLength: (res) => res.raw_output_contents.reduce((n, b) => n + b.length, 0),
        },
        options.maxResponseBytes,
      );
    }),
  });

  const port = await new Promise<number>((resolve, reject) => {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const urlHost = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host;
  const address = `${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`;
  logger.info({ event: 'model_server_grpc_listening', address });
  let closed: Promise<void> | undefined;
  return {
    address,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closed;
    },
  };
}
