/**
 * Tasks between replicas through Redis (issue 13). The task store is the truth; the stream only
 * wakes the leader, and the done channel only wakes the replica whose producer waits.
 *
 *   standby: store.create ─> XADD <prefix>task-stream {id} ──> leader: XREADGROUP (group `leader`) ─> route
 *   leader:  store.finish ─> PUBLISH <prefix>done:<origin> id ──> origin: re-reads the store, answers
 *
 * The leader reads on a connection of its own (XREADGROUP blocks), claims what a dead leader left
 * pending (XAUTOCLAIM) and acknowledges each entry once handled. A replica that stops leading stops
 * reading; entries it had read but not acknowledged go to the next leader.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The consumer group every leader reads the stream in. */
export const STREAM_GROUP = 'leader';
/** Entries read per XREADGROUP. */
const READ_COUNT = 100;
/** How long one XREADGROUP blocks (ms): bounds how late a step-down stops the loop. */
const BLOCK_MS = 500;
/** Entries pending this long on another consumer (an old leader) are claimed (ms). */
const CLAIM_IDLE_MS = 1000;
/** The stream is trimmed to about this many entries (the store holds the tasks). */
const STREAM_MAX_LEN = 100_000;

/** Options of {@link TaskStream}. */
export interface TaskStreamOptions {
  /** The replica's command connection (the stream opens two more from it). */
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly replicaId: string;
  readonly logger: Logger;
}

/** The task stream and the done channels of one replica. */
export class TaskStream {
  private readonly streamKey: string;
  private readonly waiters = new Map<string, Set<() => void>>();
  private subscriber: Redis | undefined;
  private consumer: Redis | undefined;
  /** Bumped on each start / stop of consuming: a loop of an older generation ends. */
  private generation = 0;
  private consuming = false;
  private closed = false;

  constructor(private readonly opts: TaskStreamOptions) {
    // Not `<prefix>tasks`: the task store's listing index already has that name.
    this.streamKey = `${opts.keyPrefix}task-stream`;
  }

  /** Subscribes to this replica's done channel and makes sure the consumer group exists. */
  async start(): Promise<void> {
    const { redis, logger } = this.opts;
    try {
      await redis.call('XGROUP', 'CREATE', this.streamKey, STREAM_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    const subscriber = redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (err: Error) =>
      logger.warn({ err, event: 'redis_subscriber_error' }, 'done channel connection error'),
    );
    subscriber.on('message', (_channel: string, taskId: string) => this.wake(taskId));
    await subscriber.subscribe(this.doneChannel(this.opts.replicaId));
  }

  /** Hands a task id to the leader (XADD). */
  async forward(taskId: string): Promise<void> {
    this.opts.logger.debug({ event: 'task_forwarded', task_id: taskId }, 'task handed to the leader');
    await this.opts.redis.call('XADD', this.streamKey, 'MAXLEN', '~', STREAM_MAX_LEN, '*', 'id', taskId);
  }

  /** Tells `origin` that `taskId` ended (its producer may be waiting there). */
  async publishDone(origin: string, taskId: string): Promise<void> {
    await this.opts.redis.publish(this.doneChannel(origin), taskId);
  }

  /** Calls `fn` each time this replica hears that `taskId` ended; returns the unsubscribe. */
  onDone(taskId: string, fn: () => void): () => void {
    let set = this.waiters.get(taskId);
    if (!set) this.waiters.set(taskId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.waiters.get(taskId) === set) this.waiters.delete(taskId);
    };
  }

  /** Starts reading the stream as the leader: what a dead leader left pending first, then new entries. */
  startConsuming(handle: (taskId: string) => Promise<void>): void {
    if (this.closed || this.consuming) return;
    this.consuming = true;
    const generation = ++this.generation;
    void this.consume(generation, handle);
  }

  /** Stops reading (a step-down): the loop ends without handling what it reads after this. */
  stopConsuming(): void {
    if (!this.consuming) return;
    this.consuming = false;
    this.generation++;
    // Cut the blocking read short; the next leader gets whatever was not acknowledged.
    this.consumer?.disconnect();
    this.consumer = undefined;
  }

  /** Closes both extra connections. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopConsuming();
    this.waiters.clear();
    this.subscriber?.disconnect();
  }

  private doneChannel(replicaId: string): string {
    return `${this.opts.keyPrefix}done:${replicaId}`;
  }

  /** Wakes this replica's own waiters for `taskId` (the task ended here). */
  notifyLocal(taskId: string): void {
    this.wake(taskId);
  }

  private wake(taskId: string): void {
    const set = this.waiters.get(taskId);
    if (set) for (const fn of [...set]) fn();
  }

  private async consume(generation: number, handle: (taskId: string) => Promise<void>): Promise<void> {
    const { logger, replicaId } = this.opts;
    const consumer = this.opts.redis.duplicate();
    this.consumer = consumer;
    consumer.on('error', (err: Error) =>
      logger.warn({ err, event: 'redis_consumer_error' }, 'task stream connection error'),
    );
    const live = () => this.generation === generation;
    logger.debug({ event: 'stream_consuming', replica_id: replicaId }, 'reading the task stream');
    let cursor = '0'; // this consumer's pending entries first, then '>' (new ones)
    let claimedAt = 0;
    while (live()) {
      try {
        // What an old leader read and never acknowledged becomes ours: all of it at the start, then
        // entries idle past CLAIM_IDLE_MS (one delivered to a leader's read as it stepped down).
        if (Date.now() - claimedAt >= CLAIM_IDLE_MS) {
          const minIdle = claimedAt === 0 ? 0 : CLAIM_IDLE_MS;
          claimedAt = Date.now();
          const claimed = (await consumer.call(
            'XAUTOCLAIM',
            this.streamKey,
            STREAM_GROUP,
            replicaId,
            minIdle,
            '0-0',
            'COUNT',
            1000,
            'JUSTID',
          )) as [string, string[]] | null;
          if ((claimed?.[1]?.length ?? 0) > 0) cursor = '0';
        }
        const answer = (await consumer.call(
          'XREADGROUP',
          'GROUP',
          STREAM_GROUP,
          replicaId,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.streamKey,
          cursor,
        )) as [string, [string, string[]][]][] | null;
        if (!live()) return;
        const entries = answer?.[0]?.[1] ?? [];
        if (cursor === '0' && entries.length === 0) cursor = '>';
        for (const [entryId, fields] of entries) {
          const at = fields.indexOf('id');
          const taskId = at >= 0 ? fields[at + 1] : undefined;
          if (taskId !== undefined) {
            try {
              await handle(taskId);
            } catch (err) {
              logger.error({ err, event: 'forwarded_task_failed', task_id: taskId }, 'forwarded task failed');
            }
          }
          if (!live()) return;
          await consumer.call('XACK', this.streamKey, STREAM_GROUP, entryId);
        }
      } catch (err) {
        if (!live()) return;
        logger.warn({ err, event: 'stream_read_failed' }, 'reading the task stream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 250).unref());
      }
    }
    consumer.disconnect();
  }
}
