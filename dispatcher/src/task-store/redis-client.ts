/**
 * How every dispatcher connection to Redis is configured (the task store; in replicated mode also
 * the lease and the task stream), and which errors mean "Redis cannot be reached". A Redis outage
 * must fail commands quickly, never hang them: a frozen server keeps its TCP connection open, and
 * an offline queue without bounds would hold commands for as long as the outage lasts.
 */
import type { RedisOptions } from 'ioredis';

/** How long one Redis command may take before it fails (ms); above the stream's 500 ms block. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;
/** The longest wait between two reconnect attempts (ms). */
export const REDIS_RETRY_MAX_MS = 500;

/** The ioredis options of every dispatcher connection to Redis (see the module comment). */
export function redisClientOptions(connectionName: string): RedisOptions {
  return {
    lazyConnect: true,
    connectionName,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // Queued commands fail after one failed reconnect (and by the timeout above), never pile up.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    retryStrategy: (times: number) => Math.min(times * 50, REDIS_RETRY_MAX_MS),
  };
}

const CONNECTIVITY =
  /Command timed out|Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|LOADING|shared task store/i;

/** Whether `err` says Redis could not be reached (as opposed to a bad command or reply). */
export function isConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'TaskStoreUnavailableError') return true;
  return CONNECTIVITY.test(err.message) || CONNECTIVITY.test(String((err as { code?: unknown }).code ?? ''));
}
