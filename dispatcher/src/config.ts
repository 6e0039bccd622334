import {
  ConfigError,
  configErrorFrom,
  loadEnv,
  logLevelSchema,
  type LogLevel,
} from '@smart-routing/service-kit';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AsyncTaskOptions } from './async-tasks/async-options.js';
import type { RandomSource } from './routing/random.js';
import type { TaskStore } from './task-store/task-store.js';
import { POLICY_NAMES, type PolicyName } from './routing/types.js';
import { parseTaskStoreSpec, type TaskStoreSpec } from './task-store/open-task-store.js';
import { DEFAULT_REDIS_KEY_PREFIX } from './task-store/redis-store.js';
import {
  resolveReplicationOptions,
  type ReplicationOptions,
  type ResolvedReplicationOptions,
} from './replication/replication-options.js';

export { ConfigError } from '@smart-routing/service-kit';
export type { LogLevel } from '@smart-routing/service-kit';

/** Options of `startDispatcher`. Every field is optional; defaults in brackets. */
export interface DispatcherOptions {
  /** TCP port [8080]; 0 picks a free one. */
  port?: number;
  /** Interface to listen on ['0.0.0.0']. */
  host?: string;
  /** Routing policy ['affinity']. */
  policy?: PolicyName;
  /** How long a producer waits for a task before a 504 (ms) [60000]. */
  taskTimeoutMs?: number;
  /** Most tasks waiting in all queues before a 503 queue_full [1000]. */
  maxQueue?: number;
  /** Most tasks waiting for one label [500]. */
  maxQueuePerLabel?: number;
  /** Tries per task across worker losses and failed loads, the first included [3]. */
  maxAttempts?: number;
  /** Heartbeat interval the workers are told to use (ms) [1000]. */
  heartbeatIntervalMs?: number;
  /** A worker silent this long is dropped and its tasks retried (ms) [5000]. */
  workerTimeoutMs?: number;
  /** How long `drain()` lets queued and in-flight tasks finish (ms) [10000]. */
  shutdownGraceMs?: number;
  /** Token workers must send as `Authorization: Bearer <token>` [unset = no worker auth]. */
  workerToken?: string;
  /**
   * Per-worker tokens, worker id -> token [unset]. A worker whose id is listed must present its own
   * token (the shared `workerToken` is not accepted for it), so one token cannot speak for another id.
   */
  workerTokens?: Readonly<Record<string, string>>;
  /**
   * Start without any worker token while listening beyond loopback [false]: by default startup is
   * refused then, since anyone who can reach the port could pose as a worker.
   */
  allowOpenWorkers?: boolean;
  /** Producer API keys (`Authorization: Bearer <key>` or `x-api-key`) [unset = no producer auth]. */
  apiKeys?: readonly string[];
  /**
   * Producer API keys with a tenant name, name -> key [unset]; accepted like `apiKeys`. The name is
   * the producer's tenant in fair queueing; an unnamed key's tenant is `key-` + 8 hex of its SHA-256.
   */
  namedApiKeys?: Readonly<Record<string, string>>;
  /** Fair-queueing weight per tenant (API key name), > 0 [unset: every tenant weighs 1]. */
  tenantWeights?: Readonly<Record<string, number>>;
  /** Routing tuning (affinity policy) [defaults in {@link RoutingTuning}]. */
  routing?: RoutingTuning;
  /** Base URL of the uploader that POST /upload-model forwards to [unset]. */
  uploaderUrl?: string;
  /** Model repository folder; when set, labels it lacks get a 404 at once [unset]. */
  modelRepository?: string;
  /** Time a connection has to send its Hello (ms) [5000]. */
  helloTimeoutMs?: number;
  /** Largest HTTP body accepted on /run-task and the other JSON routes (bytes) [1 MiB]. */
  maxBodyBytes?: number;
  /**
   * Largest body accepted on the KServe v2 routes (`/v2/...`), and the largest gRPC message
   * (bytes) [64 MiB - 64 KiB: the worker link's frame less room for the RunTask's other fields;
   * a batch of 8 224x224x3 FP32 images is 4.6 MiB]. Must leave {@link INFER_FRAME_OVERHEAD_BYTES}
   * under `maxPayloadBytes`, since the answer comes back in one frame.
   */
  maxInferBodyBytes?: number;
  /**
   * Port of the KServe v2 gRPC front (`inference.GRPCInferenceService`) [8081; 0 when `port` is 0,
   * so tests never collide]; 0 picks a free one; `false` turns the front off.
   */
  grpcPort?: number | false;
  /** Largest WebSocket frame accepted from a worker (bytes) [64 MiB]. */
  maxPayloadBytes?: number;
  /** Largest WebSocket frame accepted before the worker's Hello is accepted (bytes) [64 KiB]. */
  preHelloMaxBytes?: number;
  /** Time a client has to send the request headers (ms) [10000]; `server.headersTimeout`. */
  headersTimeoutMs?: number;
  /** Time a client has to send the whole request, body included (ms) [30000]; `server.requestTimeout`. */
  requestTimeoutMs?: number;
  /** Most open TCP connections (HTTP and worker sockets) [10000]; `server.maxConnections`. */
  maxConnections?: number;
  /** Most labels a worker may claim to hold (Hello labelCapacity); larger claims are clamped [64]. */
  maxWorkerLabels?: number;
  /** Most task slots a worker may claim (Hello taskSlots); larger claims are clamped [256]. */
  maxWorkerSlots?: number;
  /** How long a worker avoids a label that failed to load there (ms) [30000]. */
  labelFailureBackoffMs?: number;
  /**
   * Largest task result accepted from a worker (bytes of result JSON) [16 MiB]; a larger one fails
   * the task with 502 `result_too_large`, before it is parsed. At most `maxPayloadBytes`.
   */
  maxResultBytes?: number;
  /**
   * How long after a task timed out its slot still counts against the worker that has not answered
   * (ms) [5000]; then the dispatcher frees it and routes to that slot again.
   */
  slotReclaimGraceMs?: number;
  /** Strikes (timed-out tasks, losses with tasks in flight) within `quarantineWindowMs` that quarantine a worker [3]. */
  quarantineStrikes?: number;
  /** How far back strikes count (ms) [60000]. */
  quarantineWindowMs?: number;
  /** First quarantine cool-down (ms) [30000]; doubles on each repeat, up to 10 x. */
  quarantineMs?: number;
  /**
   * Worker connections from one peer (its per-worker credential, or the shared token / no token
   * plus its remote address) that each ended within `minWorkerSessionMs`, within
   * `quarantineWindowMs`, that quarantine the peer whatever worker ids it uses [5]: its upgrades
   * get 429 `worker_quarantined` with `Retry-After` for `quarantineMs` (doubling per repeat).
   */
  peerFlapStrikes?: number;
  /** A worker session (from its Welcome) shorter than this (ms) counts as a flap of its peer [5000]; 0 = none does. */
  minWorkerSessionMs?: number;
  /** Time allowed for the uploader to answer an upload (ms) [600000]. */
  uploadTimeoutMs?: number;
  /** How often waiting tasks are re-examined (ms) [50]. */
  tickIntervalMs?: number;
  /** How long a repository lookup is cached (ms) [2000]. */
  repositoryCacheMs?: number;
  /** Logger [pino at LOG_LEVEL or 'info' to stderr, `service: "dispatcher"`]. */
  logger?: Logger;
  /** Reads how many log records the log shipper dropped, for /metrics [unset: not reported]. */
  logRecordsDropped?: () => number;
  /** Random source for routing picks [Math.random]. Tests inject a seeded one. */
  random?: RandomSource;
  /**
   * Where async tasks and kept results live [a new in-memory store, closed with the dispatcher].
   * A store passed in is not closed by the dispatcher: its opener owns it.
   */
  taskStore?: TaskStore;
  /** Options of /send-task, /tasks and callbacks (see async-tasks/async-options.ts) [defaults]. */
  asyncTasks?: AsyncTaskOptions;
  /**
   * Several replicas on one Redis (REDIS_URL, issue 13) [unset: standalone, no Redis client]. The
   * task store must then be a Redis store on the same server (opened from `redisUrl` when
   * `taskStore` is not given).
   */
  replication?: ReplicationOptions;
}

/** The routing knobs a user may need (affinity policy); defaults in brackets. */
export interface RoutingTuning {
  /** Half-life of a request in the aged per-label request rates (ms) [30000]. */
  demandHalfLifeMs?: number;
  /** A label just loaded is kept this many of its load times unless idle [4]. */
  residencyLoadMultiple?: number;
  /**
   * Rent or buy: a load that must evict waits until its label's tasks have waited this many times
   * its load time x the victims' expected loss; 0 loads at once [1].
   */
  rentLoadMultiple?: number;
  /** Target utilisation of a label's holders' slots when sizing replica targets, (0, 1] [0.6]. */
  replicaUtilisation?: number;
  /** Most holders of one label, as a fraction of the workers (at least one holder) (0, 1] [0.5]. */
  maxReplicaShare?: number;
  /** Load labels ahead of demand on idle capacity [true]. */
  prewarm?: boolean;
  /** Unload copies beyond a label's replica target when they are idle [true]. */
  releaseSurplus?: boolean;
  /** Load time assumed for a label before any load was measured (ms) [1000]. */
  defaultLoadMs?: number;
}

/** {@link DispatcherOptions} after validation, with every default filled in (frozen). */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly policy: PolicyName;
  readonly taskTimeoutMs: number;
  readonly maxQueue: number;
  readonly maxQueuePerLabel: number;
  readonly maxAttempts: number;
  readonly heartbeatIntervalMs: number;
  readonly workerTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly workerToken: string | undefined;
  readonly workerTokens: Readonly<Record<string, string>>;
  readonly allowOpenWorkers: boolean;
  /** Every accepted key, named ones included. */
  readonly apiKeys: readonly string[];
  readonly namedApiKeys: Readonly<Record<string, string>>;
  readonly tenantWeights: Readonly<Record<string, number>>;
  readonly routing: Readonly<Required<RoutingTuning>>;
  readonly uploaderUrl: string | undefined;
  readonly modelRepository: string | undefined;
  readonly helloTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxInferBodyBytes: number;
  readonly grpcPort: number | false;
  readonly maxPayloadBytes: number;
  readonly preHelloMaxBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxWorkerLabels: number;
  readonly maxWorkerSlots: number;
  readonly labelFailureBackoffMs: number;
  readonly maxResultBytes: number;
  readonly slotReclaimGraceMs: number;
  readonly quarantineStrikes: number;
  readonly quarantineWindowMs: number;
  readonly quarantineMs: number;
  readonly peerFlapStrikes: number;
  readonly minWorkerSessionMs: number;
  readonly uploadTimeoutMs: number;
  readonly tickIntervalMs: number;
  readonly repositoryCacheMs: number;
}

/** Room a RunTask frame needs beyond its `infer_request` bytes (ids, label, task type: a few KiB). */
export const INFER_FRAME_OVERHEAD_BYTES = 64 * 1024;

/** The gRPC front's port when none is set. */
export const DEFAULT_GRPC_PORT = 8081;

const ms = (min: number) =>
  z
    .number()
    .int()
    .min(min)
    .max(2 ** 31 - 1);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const optionsSchema = z.object({
  port: z.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('0.0.0.0'),
  policy: z.enum(POLICY_NAMES as [PolicyName, ...PolicyName[]]).default('affinity'),
  taskTimeoutMs: ms(1).default(60_000),
  maxQueue: z.number().int().min(0).default(1000),
  maxQueuePerLabel: z.number().int().min(0).default(500),
  maxAttempts: z.number().int().min(1).max(100).default(3),
  heartbeatIntervalMs: ms(10).default(1000),
  workerTimeoutMs: ms(10).default(5000),
  shutdownGraceMs: ms(0).default(10_000),
  workerToken: z.string().min(1).optional(),
  workerTokens: z.record(z.string().min(1), z.string().min(1)).default({}),
  allowOpenWorkers: z.boolean().default(false),
  apiKeys: z.array(z.string().min(1, 'keys must not be empty')).default([]),
  namedApiKeys: z.record(z.string().min(1), z.string().min(1, 'keys must not be empty')).default({}),
  tenantWeights: z.record(z.string(), z.number().positive().finite()).default({}),
  routing: z
    .object({
      demandHalfLifeMs: ms(1).default(30_000),
      residencyLoadMultiple: z.number().min(0).finite().default(4),
      rentLoadMultiple: z.number().min(0).finite().default(1),
      replicaUtilisation: z.number().positive().max(1).default(0.6),
      maxReplicaShare: z.number().positive().max(1).default(0.5),
      prewarm: z.boolean().default(true),
      releaseSurplus: z.boolean().default(true),
      defaultLoadMs: ms(1).default(1000),
    })
    .strict()
    .default({
      demandHalfLifeMs: 30_000,
      residencyLoadMultiple: 4,
      rentLoadMultiple: 1,
      replicaUtilisation: 0.6,
      maxReplicaShare: 0.5,
      prewarm: true,
      releaseSurplus: true,
      defaultLoadMs: 1000,
    }),
  uploaderUrl: httpUrl.optional(),
  modelRepository: z.string().min(1).optional(),
  helloTimeoutMs: ms(1).default(5000),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  maxInferBodyBytes: z.number().int().min(1024).optional(),
  grpcPort: z.union([z.number().int().min(0).max(65535), z.literal(false)]).optional(),
  maxPayloadBytes: z
    .number()
    .int()
    .min(1024)
    .default(64 * 1024 * 1024),
  preHelloMaxBytes: z
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  headersTimeoutMs: ms(1).default(10_000),
  requestTimeoutMs: ms(1).default(30_000),
  maxConnections: z.number().int().min(1).default(10_000),
  maxWorkerLabels: z.number().int().min(1).max(1_000_000).default(64),
  maxWorkerSlots: z.number().int().min(1).max(1_000_000).default(256),
  labelFailureBackoffMs: ms(0).default(30_000),
  maxResultBytes: z
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  slotReclaimGraceMs: ms(0).default(5000),
  quarantineStrikes: z.number().int().min(1).max(1000).default(3),
  quarantineWindowMs: ms(1).default(60_000),
  quarantineMs: ms(0).default(30_000),
  peerFlapStrikes: z.number().int().min(1).max(1000).default(5),
  minWorkerSessionMs: ms(0).default(5000),
  uploadTimeoutMs: ms(1).default(600_000),
  tickIntervalMs: ms(1).default(50),
  repositoryCacheMs: ms(0).default(2000),
});

/**
 * Validates `startDispatcher` options once, fills in defaults and freezes the result.
 * @throws ConfigError naming the option.
 */
export function resolveOptions(options: DispatcherOptions = {}): ResolvedOptions {
  const {
    logger: _logger,
    random: _random,
    taskStore: _store,
    asyncTasks: _async,
    replication: _replication,
    ...plain
  } = options;
  const parsed = optionsSchema.safeParse(plain);
  if (!parsed.success) throw configErrorFrom(parsed.error);
  const o = parsed.data;
  // A v2 body travels to the worker in one RunTask frame, so it must fit a frame with room to spare.
  const inferCeiling = o.maxPayloadBytes - INFER_FRAME_OVERHEAD_BYTES;
  if (o.maxInferBodyBytes !== undefined && o.maxInferBodyBytes > inferCeiling) {
    throw new ConfigError(
      'maxInferBodyBytes',
      `must leave ${INFER_FRAME_OVERHEAD_BYTES} bytes under maxPayloadBytes (${o.maxPayloadBytes}): at most ${inferCeiling}`,
    );
  }
  return Object.freeze({
    ...o,
    maxInferBodyBytes: o.maxInferBodyBytes ?? Math.max(1024, inferCeiling),
    grpcPort: o.grpcPort ?? (o.port === 0 ? 0 : DEFAULT_GRPC_PORT),
    workerToken: o.workerToken,
    uploaderUrl: o.uploaderUrl?.replace(/\/+$/, ''),
    modelRepository: o.modelRepository,
    workerTokens: Object.freeze({ ...o.workerTokens }),
    apiKeys: Object.freeze([...new Set([...o.apiKeys, ...Object.values(o.namedApiKeys)])]),
    namedApiKeys: Object.freeze({ ...o.namedApiKeys }),
    tenantWeights: Object.freeze({ ...o.tenantWeights }),
    routing: Object.freeze({ ...o.routing }),
  });
}

/** True for hosts only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Refuses options that leave the worker endpoint open to the network: listening beyond loopback
 * needs a worker token (or `allowOpenWorkers`).
 * @throws ConfigError naming WORKER_TOKEN.
 */
export function checkWorkerTrust(options: ResolvedOptions): void {
  const hasToken = options.workerToken !== undefined || Object.keys(options.workerTokens).length > 0;
  if (hasToken || options.allowOpenWorkers || isLoopbackHost(options.host)) return;
  throw new ConfigError(
    'WORKER_TOKEN',
    `is required (or WORKER_TOKENS) when listening on ${options.host}, beyond loopback: without it ` +
      'anyone who reaches the port can pose as a worker; set ALLOW_OPEN_WORKERS=true to accept that',
  );
}

// ---------------------------------------------------------------- environment

/** The environment variables the dispatcher reads (README, Configuration). */
export const ENV_VARS = [
  'PORT',
  'HOST',
  'ROUTING_POLICY',
  'RANDOM_DISPATCH',
  'TASK_TIMEOUT_MS',
  'MAX_QUEUE',
  'MAX_QUEUE_PER_LABEL',
  'MAX_ATTEMPTS',
  'HEARTBEAT_INTERVAL_MS',
  'WORKER_TIMEOUT_MS',
  'SHUTDOWN_GRACE_MS',
  'WORKER_TOKEN',
  'WORKER_TOKENS',
  'ALLOW_OPEN_WORKERS',
  'HEADERS_TIMEOUT_MS',
  'REQUEST_TIMEOUT_MS',
  'MAX_CONNECTIONS',
  'MAX_BODY_BYTES',
  'MAX_INFER_BODY_BYTES',
  'GRPC_PORT',
  'MAX_RESULT_BYTES',
  'QUARANTINE_MS',
  'API_KEYS',
  'NAMED_API_KEYS',
  'TENANT_WEIGHTS',
  'DEMAND_HALF_LIFE_MS',
  'RESIDENCY_LOAD_MULTIPLE',
  'RENT_LOAD_MULTIPLE',
  'REPLICA_UTILISATION',
  'MAX_REPLICA_SHARE',
  'PREWARM',
  'RELEASE_SURPLUS',
  'DEFAULT_LOAD_MS',
  'UPLOADER_URL',
  'MODEL_REPOSITORY',
  'LOG_COLLECTOR_URL',
  'LOG_LEVEL',
  'TASK_STORE',
  'TASK_STORE_KEY_PREFIX',
  'RESULT_TTL_S',
  'RESULT_MAX_COUNT',
  'REDIS_URL',
  'LEASE_TTL_MS',
  'REPLICA_ID',
] as const;

/** One of {@link ENV_VARS}. */
export type EnvVar = (typeof ENV_VARS)[number];

const int = (min: number) =>
  z.coerce
    .number()
    .int()
    .min(min)
    .max(2 ** 31 - 1);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `a:x,b:y` -> {a: 'x', b: 'y'} (split at the first colon); `example` names the form in errors. */
const pairs = (example: string) =>
  z.string().transform((v, ctx) => {
    const out: Record<string, string> = {};
    for (const pair of v
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.length > 0)) {
      const at = pair.indexOf(':');
      if (at <= 0 || at === pair.length - 1) {
        ctx.addIssue({ code: 'custom', message: `must be ${example}` });
        return z.NEVER;
      }
      out[pair.slice(0, at)] = pair.slice(at + 1);
    }
    return out;
  });
const num = z.coerce.number().finite();

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  ROUTING_POLICY: z.enum(POLICY_NAMES as [PolicyName, ...PolicyName[]]).default('affinity'),
  RANDOM_DISPATCH: bool.default(false),
  TASK_TIMEOUT_MS: int(1).default(60_000),
  MAX_QUEUE: int(0).default(1000),
  MAX_QUEUE_PER_LABEL: int(0).default(500),
  MAX_ATTEMPTS: int(1).max(100).default(3),
  HEARTBEAT_INTERVAL_MS: int(10).default(1000),
  WORKER_TIMEOUT_MS: int(10).default(5000),
  SHUTDOWN_GRACE_MS: int(0).default(10_000),
  WORKER_TOKEN: z.string().min(1).optional(),
  WORKER_TOKENS: z
    .string()
    .transform((v, ctx) => {
      const tokens: Record<string, string> = {};
      for (const pair of v
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p.length > 0)) {
        const at = pair.indexOf(':');
        if (at <= 0 || at === pair.length - 1) {
          ctx.addIssue({ code: 'custom', message: 'must be id1:token1,id2:token2' });
          return z.NEVER;
        }
        tokens[pair.slice(0, at)] = pair.slice(at + 1);
      }
      return tokens;
    })
    .optional(),
  ALLOW_OPEN_WORKERS: bool.default(false),
  HEADERS_TIMEOUT_MS: int(1).default(10_000),
  REQUEST_TIMEOUT_MS: int(1).default(30_000),
  MAX_CONNECTIONS: int(1).default(10_000),
  MAX_BODY_BYTES: int(1024).optional(),
  MAX_INFER_BODY_BYTES: int(1024).optional(),
  // A port, or off / false to run without the gRPC front.
  GRPC_PORT: z
    .union([
      z.enum(['off', 'false']).transform(() => false as const),
      z.coerce.number().int().min(0).max(65535),
    ])
    .optional(),
  MAX_RESULT_BYTES: int(1024).default(16 * 1024 * 1024),
  QUARANTINE_MS: int(0).default(30_000),
  API_KEYS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k.length > 0),
    )
    .optional(),
  NAMED_API_KEYS: pairs('name1:key1,name2:key2').optional(),
  TENANT_WEIGHTS: pairs('name1:weight1,name2:weight2')
    .pipe(z.record(z.string(), z.string().transform(Number).pipe(z.number().positive().finite())))
    .optional(),
  DEMAND_HALF_LIFE_MS: int(1).optional(),
  RESIDENCY_LOAD_MULTIPLE: num.min(0).optional(),
  RENT_LOAD_MULTIPLE: num.min(0).optional(),
  REPLICA_UTILISATION: num.positive().max(1).optional(),
  MAX_REPLICA_SHARE: num.positive().max(1).optional(),
  PREWARM: bool.optional(),
  RELEASE_SURPLUS: bool.optional(),
  DEFAULT_LOAD_MS: int(1).optional(),
  UPLOADER_URL: httpUrl.optional(),
  MODEL_REPOSITORY: z.string().min(1).optional(),
  LOG_COLLECTOR_URL: httpUrl.optional(),
  LOG_LEVEL: logLevelSchema().default('info'),
  TASK_STORE: z.string().optional(),
  TASK_STORE_KEY_PREFIX: z.string().min(1).default(DEFAULT_REDIS_KEY_PREFIX),
  RESULT_TTL_S: int(1).default(86_400),
  RESULT_MAX_COUNT: int(0).default(100_000),
  REDIS_URL: z.string().optional(),
  LEASE_TTL_MS: z.coerce.number().optional(),
  REPLICA_ID: z.string().optional(),
});

/** The dispatcher process configuration: options for `startDispatcher` plus process-level settings. */
export interface DispatcherConfig extends ResolvedOptions {
  /** LOG_COLLECTOR_URL [unset]: where logs are shipped. */
  readonly logCollectorUrl: string | undefined;
  /** LOG_LEVEL ['info']. */
  readonly logLevel: LogLevel;
  /** TASK_STORE ['./data/tasks.sqlite']: `memory`, `sqlite:<path>` or a path, or `redis://…`. */
  readonly taskStore: TaskStoreSpec;
  /** TASK_STORE_KEY_PREFIX ['smart-routing:']: prefix of the Redis store's keys. */
  readonly taskStoreKeyPrefix: string;
  /** RESULT_TTL_S [86400], in ms: how long an ended task's outcome is kept. */
  readonly resultTtlMs: number;
  /** RESULT_MAX_COUNT [100000]: most ended tasks kept; the oldest beyond are pruned. */
  readonly maxStoredResults: number;
  /** REDIS_URL, LEASE_TTL_MS, REPLICA_ID: replicated mode [unset: standalone]. */
  readonly replication: ResolvedReplicationOptions | undefined;
}

/**
 * Reads the variables in {@link ENV_VARS} from `env` (empty strings count as unset), applies
 * `overrides` (CLI flags, by variable name) on top, validates once and returns a frozen config.
 * `RANDOM_DISPATCH=true` selects the `random` policy whatever ROUTING_POLICY says.
 * @throws ConfigError naming the variable.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<EnvVar, string | undefined>> = {},
): DispatcherConfig {
  const e = loadEnv(envSchema, { env, flags: overrides });
  const options = resolveOptions({
    port: e.PORT,
    host: e.HOST,
    policy: e.RANDOM_DISPATCH ? 'random' : e.ROUTING_POLICY,
    taskTimeoutMs: e.TASK_TIMEOUT_MS,
    maxQueue: e.MAX_QUEUE,
    maxQueuePerLabel: e.MAX_QUEUE_PER_LABEL,
    maxAttempts: e.MAX_ATTEMPTS,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    workerTimeoutMs: e.WORKER_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    workerToken: e.WORKER_TOKEN,
    workerTokens: e.WORKER_TOKENS ?? {},
    allowOpenWorkers: e.ALLOW_OPEN_WORKERS,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    maxConnections: e.MAX_CONNECTIONS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxInferBodyBytes: e.MAX_INFER_BODY_BYTES,
    grpcPort: e.GRPC_PORT,
    maxResultBytes: e.MAX_RESULT_BYTES,
    quarantineMs: e.QUARANTINE_MS,
    apiKeys: e.API_KEYS ?? [],
    namedApiKeys: e.NAMED_API_KEYS ?? {},
    tenantWeights: e.TENANT_WEIGHTS ?? {},
    routing: withoutUndefined({
      demandHalfLifeMs: e.DEMAND_HALF_LIFE_MS,
      residencyLoadMultiple: e.RESIDENCY_LOAD_MULTIPLE,
      rentLoadMultiple: e.RENT_LOAD_MULTIPLE,
      replicaUtilisation: e.REPLICA_UTILISATION,
      maxReplicaShare: e.MAX_REPLICA_SHARE,
      prewarm: e.PREWARM,
      releaseSurplus: e.RELEASE_SURPLUS,
      defaultLoadMs: e.DEFAULT_LOAD_MS,
    }),
    uploaderUrl: e.UPLOADER_URL,
    modelRepository: e.MODEL_REPOSITORY,
  });
  const replication = replicationFromEnv(e.REDIS_URL, e.LEASE_TTL_MS, e.REPLICA_ID, e.TASK_STORE_KEY_PREFIX);
  // With REDIS_URL the task store is Redis on that URL: the replicas share their tasks there.
  if (replication && e.TASK_STORE && e.TASK_STORE.trim() !== replication.redisUrl)
    throw new ConfigError(
      'TASK_STORE',
      `must be unset or equal REDIS_URL when REDIS_URL is set (replicas share the Redis task store): TASK_STORE=${e.TASK_STORE}, REDIS_URL=${replication.redisUrl}`,
    );
  return Object.freeze({
    ...options,
    logCollectorUrl: e.LOG_COLLECTOR_URL,
    logLevel: e.LOG_LEVEL,
    replication,
    taskStore: Object.freeze(parseTaskStoreSpec(replication ? replication.redisUrl : e.TASK_STORE)),
    taskStoreKeyPrefix: e.TASK_STORE_KEY_PREFIX,
    resultTtlMs: e.RESULT_TTL_S * 1000,
    maxStoredResults: e.RESULT_MAX_COUNT,
  });
}

/** Replication options from REDIS_URL / LEASE_TTL_MS / REPLICA_ID (undefined without REDIS_URL). */
function replicationFromEnv(
  redisUrl: string | undefined,
  leaseTtlMs: number | undefined,
  replicaId: string | undefined,
  keyPrefix: string,
): ResolvedReplicationOptions | undefined {
  if (redisUrl === undefined || redisUrl.trim() === '') return undefined;
  const names: Record<string, string> = {
    redisUrl: 'REDIS_URL',
    leaseTtlMs: 'LEASE_TTL_MS',
    replicaId: 'REPLICA_ID',
    keyPrefix: 'TASK_STORE_KEY_PREFIX',
  };
  try {
    return resolveReplicationOptions({
      redisUrl: redisUrl.trim(),
      keyPrefix,
      ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}),
      ...(replicaId ? { replicaId } : {}),
    });
  } catch (err) {
    // The option names become the variables' names in the message.
    if (err instanceof ConfigError) throw new ConfigError(names[err.variable] ?? err.variable, err.detail);
    throw err;
  }
}

/** The object without its undefined fields, so zod's defaults apply to them. */
function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
