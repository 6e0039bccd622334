/**
 * Options of the asynchronous task API (issue 12): defaults in one object, validated once with
 * zod, frozen. `asyncTaskEnv` reads them from the environment for the CLI.
 */
import { configErrorFrom } from '@smart-routing/service-kit';
import { z } from 'zod';

/** Options of async tasks (`startDispatcher({ asyncTasks })`). Defaults in brackets. */
export interface AsyncTaskOptions {
  /** How long an ended task's result is kept (s) [86400]; RESULT_TTL_S (config.ts). */
  resultTtlS?: number;
  /** Most ended tasks kept; the oldest beyond go first [100000]; RESULT_MAX_COUNT (config.ts). */
  maxResults?: number;
  /** How long an async task without `ttl_s` may take from acceptance to its end (ms) [3600000]; ASYNC_TASK_TIMEOUT_MS. */
  asyncTimeoutMs?: number;
  /** Async tasks handed to the router at once; the rest wait in the store, highest priority first [256]. */
  maxAdmitted?: number;
  /** Most accepted async tasks not yet handed to the router before /send-task answers 503 queue_full [100000]; MAX_ASYNC_BACKLOG. */
  maxBacklog?: number;
  /** Keep completed /run-task results in the store, so a retried task_id gets the result without running again [true]; PERSIST_SYNC_TASKS. */
  persistSyncResults?: boolean;
  /** HMAC-SHA256 key for callback signatures [unset: unsigned]; CALLBACK_SECRET. */
  callbackSecret?: string;
  /** Tries per callback [6]; CALLBACK_ATTEMPTS. */
  callbackAttempts?: number;
  /** First callback back-off, doubled per retry up to 30 s (ms) [500]. */
  callbackBackoffMs?: number;
  /** Time one callback POST may take (ms) [10000]. */
  callbackTimeoutMs?: number;
  /** How often waiting async tasks are offered to the router again (ms) [100]. */
  pumpIntervalMs?: number;
  /** How often expired results are pruned (ms) [60000]. */
  pruneIntervalMs?: number;
}

/** {@link AsyncTaskOptions} with every default filled in. */
export type ResolvedAsyncTaskOptions = Readonly<Required<Omit<AsyncTaskOptions, 'callbackSecret'>>> & {
  readonly callbackSecret: string | undefined;
};

const ms = (min: number) =>
  z
    .number()
    .int()
    .min(min)
    .max(2 ** 31 - 1);

const schema = z.object({
  resultTtlS: z.number().int().min(1).default(86_400),
  maxResults: z.number().int().min(1).default(100_000),
  asyncTimeoutMs: ms(1).default(3_600_000),
  maxAdmitted: z.number().int().min(1).default(256),
  maxBacklog: z.number().int().min(1).default(100_000),
  persistSyncResults: z.boolean().default(true),
  callbackSecret: z.string().min(1).optional(),
  callbackAttempts: z.number().int().min(1).max(100).default(6),
  callbackBackoffMs: ms(1).default(500),
  callbackTimeoutMs: ms(1).default(10_000),
  pumpIntervalMs: ms(1).default(100),
  pruneIntervalMs: ms(1).default(60_000),
});

/**
 * Validates and freezes async task options.
 * @throws ConfigError naming the option.
 */
export function resolveAsyncTaskOptions(options: AsyncTaskOptions = {}): ResolvedAsyncTaskOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) throw configErrorFrom(parsed.error);
  return Object.freeze({ ...parsed.data, callbackSecret: parsed.data.callbackSecret });
}

const int = z.coerce.number().int().min(1);
// RESULT_TTL_S and RESULT_MAX_COUNT are read with the store settings (config.ts).
const envSchema = z.object({
  ASYNC_TASK_TIMEOUT_MS: int.optional(),
  MAX_ASYNC_BACKLOG: int.optional(),
  PERSIST_SYNC_TASKS: z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .optional(),
  CALLBACK_SECRET: z.string().min(1).optional(),
  CALLBACK_ATTEMPTS: int.max(100).optional(),
});

/** The environment variables read by {@link asyncTaskEnv} (README, Asynchronous tasks). */
export const ASYNC_ENV_VARS = Object.keys(envSchema.shape);

/**
 * Async task options from the environment.
 * @throws ConfigError naming the variable.
 */
export function asyncTaskEnv(env: NodeJS.ProcessEnv): AsyncTaskOptions {
  const picked = Object.fromEntries(ASYNC_ENV_VARS.map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success) throw configErrorFrom(parsed.error);
  const e = parsed.data;
  const out: AsyncTaskOptions = {
    asyncTimeoutMs: e.ASYNC_TASK_TIMEOUT_MS,
    maxBacklog: e.MAX_ASYNC_BACKLOG,
    persistSyncResults: e.PERSIST_SYNC_TASKS,
    callbackSecret: e.CALLBACK_SECRET,
    callbackAttempts: e.CALLBACK_ATTEMPTS,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as AsyncTaskOptions;
}
