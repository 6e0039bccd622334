/**
 * Replicated mode's connections and lease loop, in one handle the dispatcher composes (issue 13):
 * one command connection (lease, XADD, PUBLISH, v2 bodies), the stream's subscriber and consumer (opened by
 * TaskStream), the Lease and the ReplicaRole. The dispatcher supplies what promotion and
 * step-down do (adoption, Leadership, hand-over); this module only runs the loop. Every connection
 * uses {@link redisClientOptions}: a Redis outage fails commands within a second, never hangs them.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { InferBytes } from './infer-bytes.js';
import { Lease } from './lease.js';
import { redisClientOptions } from '../task-store/redis-client.js';
import { RedisHealth } from './redis-health.js';
import { ReplicaRole } from './replica-role.js';
import type { ResolvedReplicationOptions } from './replication-options.js';
import { TaskStream } from './task-stream.js';

/** What the dispatcher does when the role changes. */
export interface ReplicationHooks {
  /** Just took the lease with `token`: adopt the store's unfinished tasks, broadcast Leadership, consume. */
  promote(token: number): Promise<void>;
  /** Stopped leading: stop orders and consuming, hand waiting tasks over. */
  demote(reason: string): void;
}

/** A replica's replication machinery. */
export interface ReplicationHandle {
  readonly options: ResolvedReplicationOptions;
  readonly role: ReplicaRole;
  readonly stream: TaskStream;
  readonly lease: Lease;
  /** Whether the shared Redis can be reached (`/ready`, metrics). */
  readonly health: RedisHealth;
  /** The bodies of forwarded v2 infers (on the command connection). */
  readonly bytes: InferBytes;
  /** Starts the lease loop (after the dispatcher listens). */
  start(): void;
  /** Stops the loop, releases the lease if held and closes the connections. Safe twice. */
  close(): Promise<void>;
}

/**
 * Connects to Redis (rejects, with nothing left open, when it cannot be reached) and prepares the
 * lease, the role and the stream; {@link ReplicationHandle.start} starts the loop.
 */
export async function connectReplication(
  options: ResolvedReplicationOptions,
  logger: Logger,
  hooks: ReplicationHooks,
  health: RedisHealth = new RedisHealth(logger),
): Promise<ReplicationHandle> {
  // Connection errors of an outage are debug records after its one warning (RedisHealth.quiet).
  const quiet = health.quiet(logger);
  // A lease call fails fast rather than queue while Redis is away: the guard handles the rest.
  const redis = new Redis(options.redisUrl, redisClientOptions(`smart-routing-replica-${options.replicaId}`));
  redis.on('error', (err: Error) =>
    quiet.warn({ err, event: 'redis_connection_error' }, 'replication connection error'),
  );
  const stream = new TaskStream({
    redis,
    keyPrefix: options.keyPrefix,
    replicaId: options.replicaId,
    logger: quiet,
  });
  try {
    await redis.connect();
    await stream.start();
  } catch (err) {
    await stream.close();
    redis.disconnect();
    throw err;
  }
  const lease = new Lease(redis, {
    keyPrefix: options.keyPrefix,
    replicaId: options.replicaId,
    ttlMs: options.leaseTtlMs,
  });
  const role = new ReplicaRole({
    lease,
    replicaId: options.replicaId,
    ttlMs: options.leaseTtlMs,
    logger,
    health,
    promote: (token) => hooks.promote(token),
    demote: (reason) => hooks.demote(reason),
  });
  let closing: Promise<void> | undefined;
  return {
    options,
    role,
    stream,
    lease,
    health,
    bytes: new InferBytes(redis, options.keyPrefix),
    start: () => role.start(),
    close: () =>
      (closing ??= (async () => {
        await role.close();
        await stream.close();
        try {
          await redis.quit();
        } catch {
          redis.disconnect();
        }
      })()),
  };
}
