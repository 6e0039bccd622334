import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError, LOG_LEVELS, loadSettings, logLevelSchema } from '@smart-routing/service-kit';
import { z } from 'zod';
import { DEFAULT_PENDING_RESULTS_BYTES } from './dispatcher-links.js';

/** The worker's settings, from the environment (see contracts) and CLI flags. */
export interface WorkerConfig {
  /** DISPATCHER_URL: http(s):// or ws(s):// base of the dispatcher. Default `ws://127.0.0.1:8080`. */
  dispatcherUrl: string;
  /**
   * DISPATCHER_URLS: comma-separated bases of several dispatcher replicas (issue 13); the worker
   * links to every one. When set it replaces DISPATCHER_URL. Default: `[dispatcherUrl]`.
   */
  dispatcherUrls: string[];
  /**
   * DISPATCHER_RESOLVE_MS: how often host names in the dispatcher URLs are resolved again (one link
   * per address; also on every reconnect). 0 = only on reconnect. Default 5000.
   */
  dispatcherResolveMs: number;
  /**
   * PENDING_RESULTS_MAX: task results kept while no dispatcher link can take them, sent when a
   * replica announces leadership (oldest dropped first). Default 1000.
   */
  pendingResultsMax: number;
  /**
   * PENDING_RESULTS_BYTES: most result bytes kept that way (oldest dropped first); at least one
   * result of the dispatcher's largest size (MAX_RESULT_BYTES, 16 MiB) fits. Default 64 MiB.
   */
  pendingResultsBytes: number;
  /**
   * RECENT_RESULTS_MS: how long a sent result is kept to send again to a new leader (the replica it
   * went to may have died before reading it), ms; 0 keeps none. Default 10000.
   */
  recentResultsMs: number;
  /** RECENT_RESULTS_MAX: most sent results kept to send again (the newest are kept). Default 256. */
  recentResultsMax: number;
  /** RECENT_RESULTS_BYTES: most bytes of sent results kept to send again (newest kept). Default 4 MiB. */
  recentResultsBytes: number;
  /** WORKER_ID. Default `<hostname>-<6 random hex>`. */
  workerId: string;
  /** WORKER_MAX_LABELS: labels the model server holds at once. Default 2. */
  maxLabels: number;
  /** WORKER_SLOTS: tasks run at once. Default 1. */
  slots: number;
  /** WORKER_MEMORY_BUDGET_BYTES: memory the models may take (0 = only WORKER_MAX_LABELS limits). Default 0. */
  memoryBudgetBytes: number;
  /** TRITON_URL: unset = start the embedded model server; `none` = no model server. */
  tritonUrl: string | undefined;
  /**
   * TRITON_PROTOCOL: how inferences reach the model server, `http` (Triton's binary tensor
   * extension) or `grpc` (KServe v2 gRPC). Health, repository and metadata calls stay HTTP. Default `http`.
   */
  tritonProtocol: 'http' | 'grpc';
  /**
   * TRITON_GRPC_URL: `host:port` of Triton's gRPC endpoint, used with TRITON_PROTOCOL=grpc and a
   * TRITON_URL (the embedded server's gRPC port is its own). Default `localhost:8001`.
   */
  tritonGrpcUrl: string;
  /** MODEL_REPOSITORY. Default `./models`. */
  modelRepository: string;
  /**
   * WORKER_MODEL_RECHECK_MS: how often a loaded label's files are re-checked for a change made in
   * the repository (a changed model is reloaded before its next task), ms; 0 = every task. Default 1000.
   */
  modelRecheckMs: number;
  /** WORKER_TOKEN: bearer token for the dispatcher. Default unset (no auth). */
  workerToken: string | undefined;
  /** LOG_COLLECTOR_URL. Default unset. */
  logCollectorUrl: string | undefined;
  /** LOG_LEVEL. Default `info`. */
  logLevel: string;
  /**
   * WORKER_HANDLERS: comma-separated task handler modules (file paths, relative to the working
   * directory, or package names) loaded by the CLI (handler-plugins.ts). Default unset (built-ins only).
   */
  handlers: string | undefined;
}

/** A setting failed validation; the message names the variable (the kit's ConfigError). */
export const WorkerConfigError = ConfigError;
/** The type of {@link WorkerConfigError}. */
export type WorkerConfigError = ConfigError;

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const httpOrWs = (name: string) =>
  z.string().refine((v) => {
    try {
      return ['http:', 'https:', 'ws:', 'wss:'].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `${name} must be an http(s):// or ws(s):// URL`);

const positiveInt = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be an integer from 1 to 10000, got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return n;
    });

/** A whole number in [min, max]; unset or blank -> `fallback`. */
const intInRange = (name: string, min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return n;
    });

/** `a,b,c` -> trimmed, non-empty items, each an http(s)/ws(s) URL. */
const urlList = (name: string) =>
  optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const urls = v
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== '');
    for (const u of urls)
      if (!httpOrWs(name).safeParse(u).success) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be a comma-separated list of http(s):// or ws(s):// URLs, got ${JSON.stringify(u)}`,
        });
        return z.NEVER;
      }
    return urls.length > 0 ? urls : undefined;
  });

const envSchema = z.object({
  DISPATCHER_URL: optionalString.pipe(httpOrWs('DISPATCHER_URL').optional()),
  DISPATCHER_URLS: urlList('DISPATCHER_URLS'),
  DISPATCHER_RESOLVE_MS: intInRange('DISPATCHER_RESOLVE_MS', 0, 86_400_000, 5000),
  PENDING_RESULTS_MAX: intInRange('PENDING_RESULTS_MAX', 0, 1_000_000, 1000),
  PENDING_RESULTS_BYTES: intInRange('PENDING_RESULTS_BYTES', 0, 2 ** 40, DEFAULT_PENDING_RESULTS_BYTES),
  RECENT_RESULTS_MS: intInRange('RECENT_RESULTS_MS', 0, 86_400_000, 10_000),
  RECENT_RESULTS_MAX: intInRange('RECENT_RESULTS_MAX', 0, 1_000_000, 256),
  RECENT_RESULTS_BYTES: intInRange('RECENT_RESULTS_BYTES', 0, 2 ** 40, 4 * 1024 * 1024),
  WORKER_ID: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'WORKER_ID must be 1-128 letters, digits, ".", "_", ":" or "-"')
      .optional(),
  ),
  WORKER_MAX_LABELS: positiveInt('WORKER_MAX_LABELS', 2),
  WORKER_SLOTS: positiveInt('WORKER_SLOTS', 1),
  WORKER_MEMORY_BUDGET_BYTES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return 0;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) {
        ctx.addIssue({
          code: 'custom',
          message: `WORKER_MEMORY_BUDGET_BYTES must be a non-negative integer (bytes), got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return n;
    }),
  TRITON_URL: optionalString.pipe(
    z
      .string()
      .refine((v) => v === 'none' || /^https?:\/\//.test(v), 'TRITON_URL must be an http(s):// URL or "none"')
      .optional(),
  ),
  TRITON_PROTOCOL: optionalString.pipe(
    z.enum(['http', 'grpc'], { error: 'TRITON_PROTOCOL must be "http" or "grpc"' }).optional(),
  ),
  TRITON_GRPC_URL: optionalString.pipe(
    z
      .string()
      .transform((v) => v.replace(/^grpc:\/\//, ''))
      .pipe(
        z
          .string()
          .regex(
            /^(\[[0-9A-Fa-f:.]+\]|[^\s/:[\]]+):\d{1,5}$/,
            'TRITON_GRPC_URL must be host:port (optionally grpc://host:port)',
          ),
      )
      .optional(),
  ),
  MODEL_REPOSITORY: optionalString,
  WORKER_MODEL_RECHECK_MS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return 1000;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) {
        ctx.addIssue({
          code: 'custom',
          message: `WORKER_MODEL_RECHECK_MS must be a non-negative integer (ms), got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return n;
    }),
  WORKER_TOKEN: optionalString,
  LOG_COLLECTOR_URL: optionalString.pipe(httpOrWs('LOG_COLLECTOR_URL').optional()),
  LOG_LEVEL: optionalString.pipe(
    logLevelSchema(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`).optional(),
  ),
  WORKER_HANDLERS: optionalString,
});

/** The environment variable behind each setting (CLI flags map to the same names). */
export const WORKER_ENV = {
  dispatcherUrl: 'DISPATCHER_URL',
  dispatcherUrls: 'DISPATCHER_URLS',
  dispatcherResolveMs: 'DISPATCHER_RESOLVE_MS',
  pendingResultsMax: 'PENDING_RESULTS_MAX',
  pendingResultsBytes: 'PENDING_RESULTS_BYTES',
  recentResultsMs: 'RECENT_RESULTS_MS',
  recentResultsMax: 'RECENT_RESULTS_MAX',
  recentResultsBytes: 'RECENT_RESULTS_BYTES',
  workerId: 'WORKER_ID',
  maxLabels: 'WORKER_MAX_LABELS',
  slots: 'WORKER_SLOTS',
  memoryBudgetBytes: 'WORKER_MEMORY_BUDGET_BYTES',
  tritonUrl: 'TRITON_URL',
  tritonProtocol: 'TRITON_PROTOCOL',
  tritonGrpcUrl: 'TRITON_GRPC_URL',
  modelRepository: 'MODEL_REPOSITORY',
  modelRecheckMs: 'WORKER_MODEL_RECHECK_MS',
  workerToken: 'WORKER_TOKEN',
  logCollectorUrl: 'LOG_COLLECTOR_URL',
  logLevel: 'LOG_LEVEL',
  handlers: 'WORKER_HANDLERS',
} as const satisfies Record<keyof WorkerConfig, string>;

/** A random worker id: the host name (a pod name under Kubernetes) plus a random suffix. */
export function randomWorkerId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64) || 'worker';
  return `${host}-${randomBytes(3).toString('hex')}`;
}

/**
 * Reads the worker settings from `env`, with `overrides` (CLI flags, as strings like the
 * environment) taking precedence; empty or blank values count as unset. Validated once, returned
 * frozen; throws `WorkerConfigError` naming the bad variable.
 */
export function loadWorkerConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof WorkerConfig, string>> = {},
): Readonly<WorkerConfig> {
  const s = loadSettings(envSchema, WORKER_ENV, { env, flags: overrides, trim: true });
  const dispatcherUrl = s.dispatcherUrl ?? 'ws://127.0.0.1:8080';
  return Object.freeze({
    ...s,
    dispatcherUrl,
    dispatcherUrls: Object.freeze(s.dispatcherUrls ?? [dispatcherUrl]) as string[],
    workerId: s.workerId ?? randomWorkerId(),
    tritonProtocol: s.tritonProtocol ?? 'http',
    tritonGrpcUrl: s.tritonGrpcUrl ?? 'localhost:8001',
    modelRepository: s.modelRepository ?? './models',
    logLevel: s.logLevel ?? 'info',
  });
}
