/**
 * The KServe v2 gRPC front: `inference.GRPCInferenceService` from `@smart-routing/kserve`'s
 * proto (written from the KServe v2 / Triton protocol documents), loaded with @grpc/proto-loader.
 * ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, routed like
 * the HTTP front (grpc-infer.ts converts ModelInfer to and from the body the workers carry); the
 * repository RPCs answer UNIMPLEMENTED (the dispatcher, not the client, decides what is loaded).
 * Errors are gRPC codes (grpcCodeOfStatus); ServerLive and ServerReady need no API key.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KSERVE_GRPC_PROTO_PATH, KServeProtocolError } from '@smart-routing/kserve';
import type { Logger } from 'pino';
import { createKeyIdentifier } from '../api-keys.js';
import type { ResolvedOptions } from '../config.js';
import { DispatcherError } from '../errors.js';
import { SERVER_METADATA, type KServeFleet } from './fleet.js';
import {
  grpcResponseOfBody,
  inferBodyOfGrpc,
  type GrpcInferRequest,
  type GrpcInferResponse,
} from './grpc-infer.js';
import { grpcErrorOf } from './triton-errors.js';

/** Options of {@link startGrpcFront}. */
export interface GrpcFrontOptions {
  readonly options: ResolvedOptions;
  readonly fleet: KServeFleet;
  readonly logger: Logger;
  /** Interface to listen on. */
  readonly host: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
}

/** A running gRPC front. */
export interface GrpcFrontHandle {
  /** `host:port`, as gRPC clients take it. */
  readonly address: string;
  readonly port: number;
  /** Stops accepting calls and waits for the running ones (cut after 2 s). Safe to call twice. */
  close(): Promise<void>;
}

const definition = protoLoader.loadSync(KSERVE_GRPC_PROTO_PATH, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The service definition (`inference.GRPCInferenceService`), for clients in tests and tools. */
export const GRPC_INFERENCE_SERVICE = (
  grpc.loadPackageDefinition(definition) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  }
).inference.GRPCInferenceService;

interface ModelMetadataJson {
  name?: string;
  versions?: string[];
  platform?: string;
  inputs?: { name: string; datatype: string; shape: number[] }[];
  outputs?: { name: string; datatype: string; shape: number[] }[];
}

/** Starts the gRPC front on `host:port`. */
export async function startGrpcFront(o: GrpcFrontOptions): Promise<GrpcFrontHandle> {
  const { options, fleet, logger } = o;
  const identify = createKeyIdentifier(options.apiKeys, options.namedApiKeys);
  const server = new grpc.Server({
    // The same bound as the HTTP front's body; grpc-js answers RESOURCE_EXHAUSTED past it.
    'grpc.max_receive_message_length': options.maxInferBodyBytes,
    // An answer can be as large as a worker's frame.
    'grpc.max_send_message_length': options.maxPayloadBytes,
  });

  const keyOf = (metadata: grpc.Metadata): Record<string, string | undefined> => {
    const first = (key: string): string | undefined => {
      const v = metadata.get(key)[0];
      return typeof v === 'string' ? v : undefined;
    };
    return { authorization: first('authorization'), 'x-api-key': first('x-api-key') };
  };

  /** A unary handler: auth (unless `open`), errors as gRPC codes, never a throw into grpc-js. */
  const unary =
    <Req, Res>(
      name: string,
      fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
      open = false,
    ) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      Promise.resolve()
        .then(() => {
          if (!open && identify(keyOf(call.metadata)) === null)
            throw new DispatcherError('unauthorized', 'missing or invalid API key');
          return fn(call.request, call);
        })
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (err instanceof KServeProtocolError) {
              callback({ code: grpc.status.INVALID_ARGUMENT, details: err.message, message: err.message });
              return;
            }
            if (!(err instanceof DispatcherError))
              logger.error({ err, event: 'grpc_call_failed', rpc: name }, 'gRPC call failed');
            callback(grpcErrorOf(err instanceof DispatcherError ? err : new DispatcherError('internal')));
          },
        );
    };

  const checkedModel = (name: string): string => {
    const bad = fleet.checkModelName(name);
    if (bad) throw bad;
    return name;
  };

  const modelInfer = (
    req: GrpcInferRequest,
    call: grpc.ServerUnaryCall<GrpcInferRequest, GrpcInferResponse>,
  ): Promise<GrpcInferResponse> => {
    const model = checkedModel(req.model_name);
    // The key's name is the producer's tenant (fair queueing), as on /run-task.
    const tenant = identify(keyOf(call.metadata)) ?? undefined;
    const { body, headerLength } = inferBodyOfGrpc(req);
    if (body.length > options.maxInferBodyBytes) {
      throw new DispatcherError(
        'payload_too_large',
        `the request is ${body.length} bytes as an infer body, over the limit of ${options.maxInferBodyBytes}`,
      );
    }
    return new Promise((resolve, reject) => {
      let replied = false;
      const abandon = fleet.infer(
        model,
        body,
        headerLength,
        (outcome) => {
          replied = true;
          if (!outcome.ok) return reject(outcome.error);
          try {
            resolve(grpcResponseOfBody(outcome.inferred.body, outcome.inferred.headerLength));
          } catch (err) {
            const why = err instanceof Error ? err.message : String(err);
            reject(new DispatcherError('worker_error', `worker ${outcome.inferred.workerId}: ${why}`));
          }
        },
        tenant,
      );
      // Client deadline or cancellation: the task goes (queued) or runs to no one (in flight).
      call.once('cancelled', () => {
        if (!replied) abandon();
      });
    });
  };

  server.addService(GRPC_INFERENCE_SERVICE.service, {
    ServerLive: unary('ServerLive', () => ({ live: true }), true),
    ServerReady: unary('ServerReady', () => ({ ready: fleet.isServerReady() }), true),
    ServerMetadata: unary('ServerMetadata', () => SERVER_METADATA),
    ModelReady: unary('ModelReady', async (r: { name: string }) => ({
      ready: await fleet.isModelReady(checkedModel(r.name)),
    })),
    ModelMetadata: unary('ModelMetadata', async (r: { name: string }) => {
      const meta = await fleet.metadataJson(checkedModel(r.name));
      if (!meta.ok) throw meta.error;
      const m = JSON.parse(meta.json) as ModelMetadataJson;
      return {
        name: m.name ?? r.name,
        versions: m.versions ?? [],
        platform: m.platform ?? '',
        inputs: m.inputs ?? [],
        outputs: m.outputs ?? [],
      };
    }),
    ModelInfer: unary('ModelInfer', modelInfer),
  });

  const port = await new Promise<number>((resolve, reject) => {
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    server.bindAsync(`${host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const urlHost = o.host === '0.0.0.0' ? '127.0.0.1' : o.host === '::' ? '::1' : o.host;
  const address = `${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`;
  logger.info({ event: 'grpc_front_listening', address }, `KServe v2 gRPC front listening on ${address}`);
  let closed: Promise<void> | undefined;
  return {
    address,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closed;
    },
  };
}
