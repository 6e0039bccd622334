import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { randomWorkerId } from './config.js';
import { DispatcherLinks } from './dispatcher-links.js';
import { errorMessage } from './errors.js';
import { GrpcInferTransport } from './grpc-infer-transport.js';
import { ModelCache } from './handlers/model-cache.js';
import { ALL_HANDLERS, createHandlerRegistry } from './handlers/registry.js';
import type { TaskHandler } from './handlers/types.js';
import { LabelManager } from './label-manager.js';
import { createWorkerLogger } from './logger.js';
import { modelFootprintBytes } from './model-footprint.js';
import { modelStamp, STALE_MODEL_CHECK_DEFAULTS, StaleModelCheck } from './model-stamp.js';
import { ModelServerWatch } from './model-server-watch.js';
import { startEmbeddedModelServer, type EmbeddedModelServer } from './model-server/index.js';
import { TaskRunner } from './task-runner.js';
import { TritonClient } from './triton-client.js';

/**
 * The worker agent, assembled:
 *
 *   startWorker ─ model server (embedded child | TRITON_URL | none); inferences binary over HTTP,
 *                 or gRPC (tritonProtocol 'grpc': the embedded child's own gRPC port, or tritonGrpcUrl)
 *               ─ LabelManager (what is loaded) ─ ModelCache (metadata, tokenizers)
 *               ─ TaskRunner (slots, labels per task, handlers)
 *               ─ DispatcherLinks (one WorkerConnection per dispatcher replica: frames <-> runner
 *                 calls; fencing and where results go)
 *
 * Shutdown (cli.ts): drain() [heartbeat draining, finish in-flight] -> close() [socket 1000,
 * then the model server child, last].
 */

/** Options of `startWorker`. */
export interface WorkerOptions {
  /** Dispatcher base URL (`http(s)://` or `ws(s)://`). Required unless `dispatcherUrls` is given. */
  dispatcherUrl?: string;
  /**
   * Base URLs of several dispatcher replicas (issue 13): one link to each (and to each address of a
   * host name). Replaces `dispatcherUrl` when given. Default `[dispatcherUrl]`.
   */
  dispatcherUrls?: readonly string[];
  /** How often dispatcher host names are resolved again, ms (0: only on reconnect). Default 5000. */
  resolveMs?: number;
  /** Results kept while no dispatcher link can take them (several replicas only). Default 1000. */
  pendingResultsMax?: number;
  /** Most bytes of those results (oldest dropped first). Default 64 MiB. */
  pendingResultsBytes?: number;
  /** How long a sent result is kept to send again to a new leader, ms (0: none). Default 10000. */
  recentResultsMs?: number;
  /** Most sent results kept to send again to a new leader. Default 256. */
  recentResultsMax?: number;
  /** Most bytes of sent results kept to send again to a new leader. Default 4 MiB. */
  recentResultsBytes?: number;
  /** Worker id. Default `<hostname>-<random>`. */
  workerId?: string;
  /** Labels the model server holds at once. Default 2. */
  maxLabels?: number;
  /** Tasks run at once. Default 1. */
  slots?: number;
  /**
   * Memory the loaded models may take, announced in Hello (the dispatcher then evicts until a label
   * fits, using each label's footprint: its files' size). Default 0: only `maxLabels` limits.
   */
  memoryBudgetBytes?: number;
  /** undefined: start the embedded model server; `'none'`: no model server (echo only); else a Triton URL. */
  tritonUrl?: string;
  /**
   * How inferences reach the model server: `http` (Triton's binary tensor extension) or `grpc`
   * (KServe v2 gRPC; the embedded server then starts its gRPC front). Health, repository and
   * metadata calls stay HTTP. Default `http`.
   */
  tritonProtocol?: 'http' | 'grpc';
  /** `host:port` of Triton's gRPC endpoint with `tritonProtocol: 'grpc'` and a `tritonUrl`. Default `localhost:8001`. */
  tritonGrpcUrl?: string;
  /** Model repository (Triton layout, tokenizers beside the models). Default `./models`. */
  modelRepository?: string;
  /**
   * How often a loaded label's files are re-checked (at its next task) for a change made in the
   * repository behind the dispatcher's back; a changed model is reloaded before it serves. ms, 0 =
   * on every task. Default 1000.
   */
  modelRecheckMs?: number;
  /** Bearer token for the dispatcher. Default none. */
  workerToken?: string;
  /** Logger. Default: pino to stderr at LOG_LEVEL with service and worker_id. */
  logger?: Logger;
  /** First reconnect delay. Default 250 ms. */
  reconnectInitialMs?: number;
  /** Longest reconnect delay. Default 10 000 ms. */
  reconnectMaxMs?: number;
  /**
   * Task types served beside the built-in `embed_texts`, `infer`, `kserve_infer`, `kserve_metadata` and `echo`. A handler with
   * `labelFree: false` is served only with a model server (not in `none` mode). A task type that
   * is already taken throws. Default none.
   */
  taskHandlers?: readonly TaskHandler[];
  /**
   * Model server health probe interval (ms); two failed probes in a row (each at most this long)
   * report the worker not ready until one passes. Default 2000; 0 turns the probe off.
   */
  healthProbeIntervalMs?: number;
}

/** A running worker. */
export interface WorkerHandle {
  readonly id: string;
  /** URL of the model server in use now (undefined in `none` mode); the embedded one's changes after a restart. */
  readonly modelServerUrl: string | undefined;
  /** Stops taking tasks and resolves when the in-flight ones are done. */
  drain(): Promise<void>;
  /** Closes the dispatcher link, then stops the embedded model server. Safe to call twice. */
  close(): Promise<void>;
}

const optionsSchema = z.object({
  dispatcherUrl: z.string().min(1, 'dispatcherUrl is required').optional(),
  dispatcherUrls: z.array(z.string().min(1)).min(1, 'dispatcherUrls needs at least one URL').optional(),
  resolveMs: z.number().int().min(0, 'resolveMs must be >= 0').optional(),
  pendingResultsMax: z.number().int().min(0, 'pendingResultsMax must be >= 0').optional(),
  pendingResultsBytes: z.number().int().min(0, 'pendingResultsBytes must be >= 0').optional(),
  recentResultsMs: z.number().int().min(0, 'recentResultsMs must be >= 0').optional(),
  recentResultsMax: z.number().int().min(0, 'recentResultsMax must be >= 0').optional(),
  recentResultsBytes: z.number().int().min(0, 'recentResultsBytes must be >= 0').optional(),
  workerId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'workerId must be 1-128 letters, digits, ".", "_", ":" or "-"')
    .optional(),
  maxLabels: z.number().int().min(1, 'maxLabels must be at least 1').optional(),
  slots: z.number().int().min(1, 'slots must be at least 1').optional(),
  memoryBudgetBytes: z.number().int().min(0, 'memoryBudgetBytes must be >= 0').optional(),
  tritonUrl: z.string().optional(),
  tritonProtocol: z.enum(['http', 'grpc'], { error: "tritonProtocol must be 'http' or 'grpc'" }).optional(),
  tritonGrpcUrl: z.string().min(1).optional(),
  modelRepository: z.string().min(1).optional(),
  modelRecheckMs: z.number().min(0, 'modelRecheckMs must be >= 0').optional(),
  workerToken: z.string().optional(),
  reconnectInitialMs: z.number().positive().optional(),
  reconnectMaxMs: z.number().positive().optional(),
  healthProbeIntervalMs: z.number().int().min(0).optional(),
});

/** Starts a worker: its model server, label bookkeeping and dispatcher link. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { logger: givenLogger, taskHandlers = [], ...rest } = options;
  const parsed = optionsSchema.safeParse(rest);
  if (!parsed.success) throw new TypeError(`startWorker: ${parsed.error.issues[0]!.message}`);
  const dispatcherUrls =
    parsed.data.dispatcherUrls ?? (parsed.data.dispatcherUrl ? [parsed.data.dispatcherUrl] : []);
  if (dispatcherUrls.length === 0) throw new TypeError('startWorker: dispatcherUrl is required');
  const withModelServer = parsed.data.tritonUrl !== 'none';
  // Built before anything starts, so a clashing task type throws with nothing to clean up.
  let handlers: ReadonlyMap<string, TaskHandler>;
  try {
    handlers = createHandlerRegistry({ withModelServer, handlers: [...ALL_HANDLERS, ...taskHandlers] });
  } catch (err) {
    throw new TypeError(`startWorker: taskHandlers: ${errorMessage(err)}`);
  }
  const o = Object.freeze({
    ...parsed.data,
    workerId: parsed.data.workerId ?? randomWorkerId(),
    maxLabels: parsed.data.maxLabels ?? 2,
    slots: parsed.data.slots ?? 1,
    modelRepository: path.resolve(parsed.data.modelRepository ?? './models'),
  });
  const logger = givenLogger
    ? givenLogger.child({ worker_id: o.workerId })
    : createWorkerLogger({ workerId: o.workerId });

  const grpc = o.tritonProtocol === 'grpc';
  let server: EmbeddedModelServer | undefined;
  let client: TritonClient | undefined;
  if (o.tritonUrl === 'none') client = undefined;
  else if (o.tritonUrl) {
    const transport = grpc
      ? new GrpcInferTransport({ address: o.tritonGrpcUrl ?? 'localhost:8001' })
      : undefined;
    client = new TritonClient({ url: o.tritonUrl, ...(transport ? { transport } : {}) });
  } else {
    server = await startEmbeddedModelServer({
      repository: o.modelRepository,
      logger: logger.child({ component: 'model-server' }),
      grpc,
    });
    const s = server;
    const transport = grpc ? new GrpcInferTransport({ address: () => s.grpcAddress ?? '' }) : undefined;
    client = new TritonClient({ url: () => s.url, ...(transport ? { transport } : {}) });
  }

  const probeMs = o.healthProbeIntervalMs ?? 2000;
  const c = client;
  const watch =
    c && probeMs > 0
      ? new ModelServerWatch({
          probe: () => c.isReady(),
          logger,
          intervalMs: probeMs,
          timeoutMs: probeMs,
        })
      : undefined;

  const labels = new LabelManager({
    capacity: o.maxLabels,
    client,
    logger,
    footprintOf: (label) => modelFootprintBytes(o.modelRepository, label),
    // The same budget the dispatcher is told: its safety net evicts by memory too.
    memoryBudgetBytes: o.memoryBudgetBytes ?? 0,
    staleCheck: new StaleModelCheck({
      stampOf: (label) => modelStamp(o.modelRepository, label),
      intervalMs: o.modelRecheckMs ?? STALE_MODEL_CHECK_DEFAULTS.intervalMs,
    }),
  });
  const models = new ModelCache({ client, modelRepository: o.modelRepository });
  labels.on('change', (c) => models.invalidate(c.label));

  if (server) {
    // A dead child took its models with it; the restarted one starts empty.
    server.on('exit', () => {
      labels.forgetAll('model server exited');
      watch?.set(false, 'model server exited');
    });
    server.on('restart', () => {
      // The restarted child answered before 'restart': no need to wait for the next probe.
      watch?.set(true, 'model server restarted');
      labels
        .resync('model server restarted')
        .catch((err: unknown) =>
          logger.warn(
            { event: 'label_resync_failed', message: errorMessage(err) },
            'resync after restart failed',
          ),
        );
    });
  }
  if (client && !server) {
    // An external Triton may already hold models: start from what it really has.
    await labels
      .resync('startup')
      .catch((err: unknown) =>
        logger.warn(
          { event: 'label_resync_failed', message: errorMessage(err) },
          'could not read the model server index',
        ),
      );
  }

  const runner = new TaskRunner({
    workerId: o.workerId,
    slots: o.slots,
    labels,
    handlers,
    models,
    client,
    logger,
  });
  const connection = new DispatcherLinks({
    dispatcherUrls,
    ...(o.resolveMs !== undefined ? { resolveMs: o.resolveMs } : {}),
    ...(o.pendingResultsMax !== undefined ? { pendingResultsMax: o.pendingResultsMax } : {}),
    ...(o.pendingResultsBytes !== undefined ? { pendingResultsBytes: o.pendingResultsBytes } : {}),
    ...(o.recentResultsMs !== undefined ? { recentResultsMs: o.recentResultsMs } : {}),
    ...(o.recentResultsMax !== undefined ? { recentResultsMax: o.recentResultsMax } : {}),
    ...(o.recentResultsBytes !== undefined ? { recentResultsBytes: o.recentResultsBytes } : {}),
    workerId: o.workerId,
    token: o.workerToken,
    runner,
    labels,
    logger,
    memoryBudgetBytes: o.memoryBudgetBytes ?? 0,
    modelServerHealthy: () => watch?.healthy ?? true,
    ...(o.reconnectInitialMs !== undefined ? { reconnectInitialMs: o.reconnectInitialMs } : {}),
    ...(o.reconnectMaxMs !== undefined ? { reconnectMaxMs: o.reconnectMaxMs } : {}),
  });
  watch?.on('change', () => connection.modelServerChanged());
  watch?.start();
  connection.start();
  logger.info(
    {
      event: 'worker_started',
      dispatcher_url: dispatcherUrls.join(','),
      model_server: server ? 'embedded' : client ? 'triton' : 'none',
      model_server_url: client?.url,
      infer_protocol: client?.protocol,
      label_capacity: o.maxLabels,
      slots: o.slots,
      task_types: runner.taskTypes,
    },
    'worker started',
  );

  let closing: Promise<void> | undefined;
  return {
    id: o.workerId,
    get modelServerUrl() {
      return client?.url;
    },
    drain: () => connection.drain(),
    close() {
      closing ??= (async () => {
        watch?.stop();
        await connection.close();
        client?.close();
        await server?.close();
        logger.info({ event: 'worker_closed' }, 'worker closed');
      })();
      return closing;
    },
  };
}
