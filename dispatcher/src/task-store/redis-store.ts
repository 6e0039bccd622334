/**
 * The task store for fleets: Redis (ioredis), shared by every dispatcher replica.
 *
 * Keys, all under `keyPrefix` (default `smart-routing:`):
 *
 * | key | type | holds |
 * |---|---|---|
 * | `task:<id>` | hash | one task's record |
 * | `tasks` | sorted set, lex | every task, member `<queuedAt, 16 digits>:<id>`: listing newest first |
 * | `status:<status>` | sorted set, lex | the same members, one set per status: listing and counting by status |
 * | `unfinished` | sorted set, lex | queued and running tasks, oldest first: re-queueing after a restart |
 * | `finished` | sorted set, score finishedAt | ended task ids: pruning by age and count |
 *
 * Every write that reads a status first is one Lua script, so it is atomic on the server: two
 * replicas finishing one task at once store one result, and the indexes never disagree with the
 * hashes. Scripts name the task's other keys from the prefix; for Redis Cluster, give the prefix a
 * hash tag (`{sr}:`) so every key lives in one slot.
 *
 * An outage (redis-client.ts): every call rejects within a second with TaskStoreUnavailableError
 * (the routes answer 503 task_store_unavailable); the connection retries on its own, and the log
 * has one warning when the connection fails and one info line when it is back.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { serviceLogger } from '../logger.js';
import { TASK_STATUSES, zeroCounts } from './memory-store.js';
import { isConnectivityError, redisClientOptions } from './redis-client.js';
import { decodeCursor, encodeCursor, pageLimit, type PagePosition } from './task-page.js';
import {
  TASK_STORE_CALLS,
  TaskStoreClosedError,
  TaskStoreUnavailableError,
  type NewTaskRecord,
  type TaskEnding,
  type TaskPage,
  type TaskRecord,
  type TaskStatus,
  type TaskStore,
} from './task-store.js';

/** Options of {@link RedisTaskStore.connect}. */
export interface RedisTaskStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. */
  url: string;
  /** Prefix of every key ['smart-routing:']; replicas sharing tasks use the same one. */
  keyPrefix?: string;
  /** Where connection errors are logged [the dispatcher's default logger]. */
  logger?: Logger;
}

/** {@link RedisTaskStoreOptions.keyPrefix} when unset. */
export const DEFAULT_REDIS_KEY_PREFIX = 'smart-routing:';

// Tasks are removed from the indexes in batches so one prune never blocks the server for long.
const PRUNE_BATCH = 500;
/** What producers are told when Redis cannot be reached. */
export const REDIS_STORE_UNAVAILABLE = 'the shared task store (Redis) cannot be reached; retry later';
const READ_BATCH = 500;

const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'idx', ARGV[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return 1`;

// KEYS: task, status:queued, status:running. ARGV: workerId, startedAt.
const MARK_RUNNING = `
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'queued' and s ~= 'running' then return 0 end
local m = redis.call('HGET', KEYS[1], 'idx')
redis.call('ZREM', KEYS[2], m)
redis.call('ZADD', KEYS[3], 0, m)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'workerId', ARGV[1], 'startedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'labelMiss')
return 1`;

// KEYS: task, status:queued, status:running.
const MARK_QUEUED = `
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'queued' and s ~= 'running' then return 0 end
local m = redis.call('HGET', KEYS[1], 'idx')
redis.call('ZREM', KEYS[3], m)
redis.call('ZADD', KEYS[2], 0, m)
redis.call('HSET', KEYS[1], 'status', 'queued')
return 1`;

// KEYS: task, status:queued, status:running, status:<final>, unfinished, finished.
// ARGV: taskId, status, finishedAt, then field/value pairs.
const FINISH = `
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'queued' and s ~= 'running' then return 0 end
local m = redis.call('HGET', KEYS[1], 'idx')
redis.call('ZREM', KEYS[2], m)
redis.call('ZREM', KEYS[3], m)
redis.call('ZADD', KEYS[4], 0, m)
redis.call('ZREM', KEYS[5], m)
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finishedAt', ARGV[3], unpack(ARGV, 4))
return 1`;

// KEYS: finished, tasks, then status:<s> in TASK_STATUSES order.
// ARGV: task key prefix, cutoff (exclusive), maxResults, batch. Returns how many were dropped.
const PRUNE = `
local batch = tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, batch)
if #ids < batch then
  -- Every expired id is in ids, and they are the lowest ranks: the next ranks are the oldest kept.
  local over = redis.call('ZCARD', KEYS[1]) - #ids - tonumber(ARGV[3])
  if over > 0 then
    local more = redis.call('ZRANGE', KEYS[1], #ids, #ids + math.min(over, batch - #ids) - 1)
    for _, id in ipairs(more) do ids[#ids + 1] = id end
  end
end
local sets = {}
for i = 3, #KEYS do sets[i - 2] = KEYS[i] end
local index = {queued = 1, running = 2, completed = 3, failed = 4, cancelled = 5, expired = 6}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local v = redis.call('HMGET', key, 'idx', 'status')
  if v[1] then
    redis.call('ZREM', KEYS[2], v[1])
    local i = index[v[2]]
    if i then redis.call('ZREM', sets[i], v[1]) end
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
return #ids`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** A {@link TaskStore} in Redis. Open it with {@link RedisTaskStore.connect}. */
export class RedisTaskStore implements TaskStore {
  readonly kind = 'redis';
  /** The key prefix in use. */
  readonly keyPrefix: string;
  private readonly redis: Redis;
  private readonly scripts: Record<'create' | 'markRunning' | 'markQueued' | 'finish' | 'prune', Script>;
  private closed = false;

  /**
   * Connects and resolves once the server answers; rejects (and lets go of the connection) when it
   * cannot be reached.
   */
  static async connect(options: RedisTaskStoreOptions): Promise<RedisTaskStore> {
    const logger = serviceLogger(options.logger);
    const redis = new Redis(options.url, redisClientOptions('smart-routing-task-store'));
    // ioredis reconnects by itself; without a listener an 'error' event would crash the process.
    // One warning per outage: each reconnect attempt fails again until Redis is back.
    let down = false;
    redis.on('error', (error: Error) => {
      if (down) return logger.debug({ err: error, store: 'redis' }, 'task store connection error');
      down = true;
      logger.warn({ err: error, store: 'redis' }, 'task store connection error');
    });
    redis.on('ready', () => {
      if (!down) return;
      down = false;
      logger.info({ event: 'task_store_reconnected', store: 'redis' }, 'task store connection is back');
    });
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      redis.disconnect();
      throw error;
    }
    return new RedisTaskStore(redis, options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX);
  }

  private constructor(redis: Redis, keyPrefix: string) {
    this.redis = redis;
    this.keyPrefix = keyPrefix;
    const define = (name: string, keys: number, lua: string): Script => {
      redis.defineCommand(name, { numberOfKeys: keys, lua });
      const fn = (redis as unknown as Record<string, Script>)[name]!;
      return fn.bind(redis);
    };
    this.scripts = {
      create: define('taskStoreCreate', 4, CREATE),
      markRunning: define('taskStoreMarkRunning', 3, MARK_RUNNING),
      markQueued: define('taskStoreMarkQueued', 3, MARK_QUEUED),
      finish: define('taskStoreFinish', 6, FINISH),
      prune: define('taskStorePrune', 2 + TASK_STATUSES.length, PRUNE),
    };
    // Redis failures leave every call as one error class the routes know (a 503, not a 500).
    const self = this as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const name of TASK_STORE_CALLS) {
      const call = self[name]!.bind(this);
      self[name] = (...args) =>
        call(...args).catch((err: unknown) => {
          if (!isConnectivityError(err)) throw err;
          throw new TaskStoreUnavailableError(REDIS_STORE_UNAVAILABLE, { cause: err });
        });
    }
  }

  async create(task: NewTaskRecord): Promise<{ created: true } | { created: false; existing: TaskRecord }> {
    this.check();
    if (!Number.isSafeInteger(task.queuedAt) || task.queuedAt < 0) {
      throw new TypeError(`queuedAt must be Unix ms (a non-negative integer), got ${task.queuedAt}`);
    }
    const fields: string[] = [];
    put(fields, 'taskId', task.taskId);
    put(fields, 'taskType', task.taskType);
    put(fields, 'label', task.label);
    put(fields, 'parametersJson', task.parametersJson);
    put(fields, 'mode', task.mode);
    put(fields, 'priority', task.priority);
    put(fields, 'callbackUrl', task.callbackUrl);
    put(fields, 'tenant', task.tenant);
    put(fields, 'queuedAt', task.queuedAt);
    put(fields, 'expiresAt', task.expiresAt);
    put(fields, 'origin', task.origin);
    put(fields, 'deadlineAt', task.deadlineAt);
    const answer = await this.scripts.create(
      this.taskKey(task.taskId),
      this.key('tasks'),
      this.statusKey('queued'),
      this.key('unfinished'),
      member(task),
      ...fields,
    );
    if (answer === 1) return { created: true };
    return { created: false, existing: fromHash(pairsToObject(answer as string[])) };
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    this.check();
    const hash = await this.redis.hgetall(this.taskKey(taskId));
    return Object.keys(hash).length === 0 ? undefined : fromHash(hash);
  }

  async markRunning(taskId: string, workerId: string, startedAt: number): Promise<boolean> {
    this.check();
    const answer = await this.scripts.markRunning(
      this.taskKey(taskId),
      this.statusKey('queued'),
      this.statusKey('running'),
      workerId,
      startedAt,
    );
    return answer === 1;
  }

  async markQueued(taskId: string): Promise<boolean> {
    this.check();
    const answer = await this.scripts.markQueued(
      this.taskKey(taskId),
      this.statusKey('queued'),
      this.statusKey('running'),
    );
    return answer === 1;
  }

  async finish(taskId: string, ending: TaskEnding): Promise<boolean> {
    this.check();
    const fields: string[] = [];
    put(fields, 'resultJson', ending.resultJson);
    put(fields, 'errorCode', ending.error?.code);
    put(fields, 'errorMessage', ending.error?.message);
    put(fields, 'workerId', ending.workerId);
    put(fields, 'labelMiss', ending.labelMiss === undefined ? undefined : ending.labelMiss ? '1' : '0');
    const answer = await this.scripts.finish(
      this.taskKey(taskId),
      this.statusKey('queued'),
      this.statusKey('running'),
      this.statusKey(ending.status),
      this.key('unfinished'),
      this.key('finished'),
      taskId,
      ending.status,
      ending.finishedAt,
      ...fields,
    );
    return answer === 1;
  }

  async unfinished(): Promise<TaskRecord[]> {
    this.check();
    const members = (await this.redis.call('ZRANGE', this.key('unfinished'), '-', '+', 'BYLEX')) as string[];
    // A task that ends between the two reads is dropped: it no longer needs re-queueing.
    return (await this.records(members)).filter((t) => t.status === 'queued' || t.status === 'running');
  }

  async list(query: { status?: TaskStatus; limit?: number; cursor?: string }): Promise<TaskPage> {
    this.check();
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const key = query.status === undefined ? this.key('tasks') : this.statusKey(query.status);
    const max = after ? `(${member(after)}` : '+';
    // One more than asked says whether another page exists.
    const members = (await this.redis.call(
      'ZRANGE',
      key,
      max,
      '-',
      'BYLEX',
      'REV',
      'LIMIT',
      0,
      limit + 1,
    )) as string[];
    const rows = await this.records(members.slice(0, limit));
    const last = rows[rows.length - 1];
    return members.length > limit && last ? { tasks: rows, nextCursor: encodeCursor(last) } : { tasks: rows };
  }

  async countByStatus(): Promise<Record<TaskStatus, number>> {
    this.check();
    const pipeline = this.redis.pipeline();
    for (const status of TASK_STATUSES) pipeline.zcard(this.statusKey(status));
    const answers = (await pipeline.exec()) ?? [];
    const counts = zeroCounts();
    TASK_STATUSES.forEach((status, i) => {
      const [error, n] = answers[i] ?? [new Error('no answer')];
      if (error) throw error;
      counts[status] = Number(n);
    });
    return counts;
  }

  async prune(now: number, resultTtlMs: number, maxResults: number): Promise<number> {
    this.check();
    let total = 0;
    for (;;) {
      const dropped = Number(
        await this.scripts.prune(
          this.key('finished'),
          this.key('tasks'),
          ...TASK_STATUSES.map((s) => this.statusKey(s)),
          this.taskKey(''),
          now - resultTtlMs,
          Math.max(0, Math.floor(maxResults)),
          PRUNE_BATCH,
        ),
      );
      total += dropped;
      if (dropped < PRUNE_BATCH) return total;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.redis.quit();
    } catch {
      // Already disconnected: nothing left to release.
      this.redis.disconnect();
    }
  }

  /** Records for index members, in their order; members whose task was pruned meanwhile are skipped. */
  private async records(members: string[]): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    for (let i = 0; i < members.length; i += READ_BATCH) {
      const pipeline = this.redis.pipeline();
      for (const m of members.slice(i, i + READ_BATCH)) pipeline.hgetall(this.taskKey(idOf(m)));
      for (const [error, hash] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        if (hash && Object.keys(hash).length > 0) out.push(fromHash(hash as Record<string, string>));
      }
    }
    return out;
  }

  /** A closed store rejects every call (the methods are async, so this never throws synchronously). */
  private check(): void {
    if (this.closed) throw new TaskStoreClosedError(this.kind);
  }

  private key(name: string): string {
    return this.keyPrefix + name;
  }

  private taskKey(taskId: string): string {
    return `${this.keyPrefix}task:${taskId}`;
  }

  private statusKey(status: TaskStatus): string {
    return `${this.keyPrefix}status:${status}`;
  }
}

const QUEUED_AT_DIGITS = 16;

/** The lex index member: fixed-width queuedAt, so byte order is (queuedAt, taskId) order. */
function member(row: PagePosition): string {
  return `${String(row.queuedAt).padStart(QUEUED_AT_DIGITS, '0')}:${row.taskId}`;
}

function idOf(indexMember: string): string {
  return indexMember.slice(QUEUED_AT_DIGITS + 1);
}

function put(fields: string[], name: string, value: string | number | undefined): void {
  if (value !== undefined) fields.push(name, String(value));
}

function pairsToObject(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}

function fromHash(hash: Record<string, string>): TaskRecord {
  const record: Record<string, unknown> = {
    taskId: hash.taskId,
    taskType: hash.taskType,
    label: hash.label,
    parametersJson: hash.parametersJson,
    mode: hash.mode,
    priority: Number(hash.priority),
    queuedAt: Number(hash.queuedAt),
    status: hash.status,
    attempts: Number(hash.attempts),
  };
  if (hash.callbackUrl !== undefined) record.callbackUrl = hash.callbackUrl;
  if (hash.tenant !== undefined) record.tenant = hash.tenant;
  if (hash.expiresAt !== undefined) record.expiresAt = Number(hash.expiresAt);
  if (hash.origin !== undefined) record.origin = hash.origin;
  if (hash.deadlineAt !== undefined) record.deadlineAt = Number(hash.deadlineAt);
  if (hash.workerId !== undefined) record.workerId = hash.workerId;
  if (hash.labelMiss !== undefined) record.labelMiss = hash.labelMiss === '1';
  if (hash.startedAt !== undefined) record.startedAt = Number(hash.startedAt);
  if (hash.finishedAt !== undefined) record.finishedAt = Number(hash.finishedAt);
  if (hash.resultJson !== undefined) record.resultJson = hash.resultJson;
  if (hash.errorCode !== undefined) {
    record.error = { code: hash.errorCode, message: hash.errorMessage ?? '' };
  }
  return record as unknown as TaskRecord;
}
