/**
 * Options of replicated mode (issue 13): several dispatcher replicas share one Redis; one leader
 * routes, the others are warm standbys. Validated once (zod), then frozen.
 */
import { hostname } from 'node:os';
import { configErrorFrom } from '@smart-routing/service-kit';
import { z } from 'zod';
import { DEFAULT_REDIS_KEY_PREFIX } from '../task-store/redis-store.js';

/** Options of replicated mode; defaults in brackets. */
export interface ReplicationOptions {
  /** `redis://host:port[/db]` (or `rediss://`): the lease, the task stream and the task store. */
  redisUrl: string;
  /** How long a lease lasts without renewal (ms) [2000, at least 300]; renewed every third of it. */
  leaseTtlMs?: number;
  /** This replica's id, unique among the replicas [`<hostname>-<pid>`]. */
  replicaId?: string;
  /** Prefix of every Redis key, as the task store's `TASK_STORE_KEY_PREFIX` ['smart-routing:']. */
  keyPrefix?: string;
}

/** {@link ReplicationOptions} with every default filled in. */
export interface ResolvedReplicationOptions {
  readonly redisUrl: string;
  readonly leaseTtlMs: number;
  readonly replicaId: string;
  readonly keyPrefix: string;
}

/** {@link ReplicationOptions.leaseTtlMs} when unset. */
export const DEFAULT_LEASE_TTL_MS = 2000;
/** The shortest lease accepted: below it a busy event loop loses the lease on its own. */
export const MIN_LEASE_TTL_MS = 300;

const schema = z
  .object({
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\/\S+$/i, 'must be a redis:// or rediss:// URL')
      .refine((v) => URL.canParse(v), 'must be a valid URL'),
    leaseTtlMs: z
      .number()
      .int()
      .min(MIN_LEASE_TTL_MS)
      .max(2 ** 31 - 1)
      .default(DEFAULT_LEASE_TTL_MS),
    replicaId: z
      .string()
      .regex(/^[\w.@-]{1,100}$/, 'must be 1-100 letters, digits, _ . @ - (no colon)')
      .optional(),
    keyPrefix: z.string().min(1).default(DEFAULT_REDIS_KEY_PREFIX),
  })
  .strict();

/**
 * Validates replication options, fills in defaults and freezes the result.
 * @throws ConfigError naming the option.
 */
export function resolveReplicationOptions(options: ReplicationOptions): ResolvedReplicationOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) throw configErrorFrom(parsed.error);
  const o = parsed.data;
  return Object.freeze({ ...o, replicaId: o.replicaId ?? defaultReplicaId() });
}

/** `<hostname>-<pid>`, cleaned to the characters a replica id may hold. */
export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^\w.@-]/g, '_').slice(0, 100);
}
