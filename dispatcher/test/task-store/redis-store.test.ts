// Against a real redis-server (Debian's, started per file on a free port by test/support).
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_STORE_UNAVAILABLE, RedisTaskStore } from '../../src/task-store/redis-store.js';
import { TaskStoreUnavailableError } from '../../src/task-store/task-store.js';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { describeTaskStoreContract, newTask } from './contract.js';
import { expectAcknowledged, killWriterMidStream } from './durability.js';

if (redisMissing) console.warn(`Redis task store tests skipped: ${redisMissing}`);

const logger = pino({ level: 'silent' });
let server: RedisServerHandle;
let prefixes = 0;

/** A fresh prefix per store: every test starts empty on the shared server. */
function nextPrefix(): string {
  prefixes += 1;
  return `test${prefixes}:`;
}

describe.skipIf(redisMissing !== undefined)('RedisTaskStore (real redis-server)', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describeTaskStoreContract('redis', async () => ({
    store: await RedisTaskStore.connect({ url: server.url, keyPrefix: nextPrefix(), logger }),
  }));

  it('rejects with TaskStoreUnavailableError, not a hang, while Redis is frozen, and works again after', async () => {
    // A SIGSTOPped server keeps its connections open: without a command timeout a call waits forever.
    const store = await RedisTaskStore.connect({ url: server.url, keyPrefix: nextPrefix(), logger });
    await store.create(newTask('frozen', 1000));
    server.pause();
    try {
      const error = await store.get('frozen').catch((err: unknown) => err);
      expect(error).toBeInstanceOf(TaskStoreUnavailableError);
      expect((error as Error).message).toBe(REDIS_STORE_UNAVAILABLE);
      await expect(store.list({})).rejects.toBeInstanceOf(TaskStoreUnavailableError);
    } finally {
      server.resume();
    }
    expect((await store.get('frozen'))?.status).toBe('queued');
    await store.close();
  });

  it('keeps one hash per task and sorted-set indexes, all under its prefix', async () => {
    const keyPrefix = nextPrefix();
    const store = await RedisTaskStore.connect({ url: server.url, keyPrefix, logger });
    await store.create(newTask('a', 1000));
    await store.create(newTask('b', 2000));
    await store.finish('a', { status: 'completed', finishedAt: 3000, resultJson: '{}' });
    const raw = new Redis(server.url);
    const keys = (await raw.keys(`${keyPrefix}*`)).sort();
    expect(keys).toEqual(
      ['finished', 'status:completed', 'status:queued', 'task:a', 'task:b', 'tasks', 'unfinished'].map(
        (k) => keyPrefix + k,
      ),
    );
    expect(await raw.type(`${keyPrefix}task:a`)).toBe('hash');
    for (const k of ['tasks', 'unfinished', 'finished', 'status:queued']) {
      expect(await raw.type(keyPrefix + k)).toBe('zset');
    }
    expect(await raw.zrange(`${keyPrefix}unfinished`, 0, -1)).toEqual(['0000000000002000:b']);
    expect(await raw.zrange(`${keyPrefix}finished`, 0, -1, 'WITHSCORES')).toEqual(['a', '3000']);
    // Another prefix sees nothing of it.
    const other = await RedisTaskStore.connect({ url: server.url, keyPrefix: nextPrefix(), logger });
    expect(await other.get('a')).toBeUndefined();
    await other.close();
    await raw.quit();
    await store.close();
  });

  it('finishes a task exactly once when many clients race to finish it', async () => {
    const keyPrefix = nextPrefix();
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => RedisTaskStore.connect({ url: server.url, keyPrefix, logger })),
    );
    for (let round = 0; round < 20; round++) {
      const id = `race${round}`;
      await stores[0]!.create(newTask(id, 1000 + round));
      await stores[1]!.markRunning(id, 'w1', 1100);
      const results = await Promise.all(
        stores.flatMap((store, s) =>
          Array.from({ length: 5 }, (_, i) =>
            store.finish(id, {
              status: i % 2 ? 'failed' : 'completed',
              finishedAt: 2000 + s * 10 + i,
              resultJson: `"${s}-${i}"`,
            }),
          ),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    }
    const counts = await stores[0]!.countByStatus();
    expect(counts.completed + counts.failed).toBe(20);
    expect(counts.running).toBe(0);
    const raw = new Redis(server.url);
    expect(await raw.zcard(`${keyPrefix}finished`)).toBe(20);
    expect(await raw.zcard(`${keyPrefix}unfinished`)).toBe(0);
    await raw.quit();
    await Promise.all(stores.map((s) => s.close()));
  });

  it('a new client sees every write a SIGKILLed writer acknowledged, and so after a server restart', async () => {
    const keyPrefix = nextPrefix();
    const acked = await killWriterMidStream(server.url, 300, keyPrefix);
    expect(acked.finished.length).toBeGreaterThan(100);
    let store = await RedisTaskStore.connect({ url: server.url, keyPrefix, logger });
    await expectAcknowledged(store, acked);
    await store.close();
    // SIGTERM flushes the append-only file; a restarted server reads it back.
    await server.restart();
    store = await RedisTaskStore.connect({ url: server.url, keyPrefix, logger });
    await expectAcknowledged(store, acked);
    await store.close();
  });

  it('a connected store carries on across a server restart (reconnects, reloads its scripts)', async () => {
    const keyPrefix = nextPrefix();
    const store = await RedisTaskStore.connect({ url: server.url, keyPrefix, logger });
    await store.create(newTask('before', 1));
    await store.markRunning('before', 'w1', 2);
    // The restarted server has an empty script cache: EVALSHA answers NOSCRIPT, ioredis falls back to EVAL.
    await server.restart();
    expect(await store.finish('before', { status: 'completed', finishedAt: 3, resultJson: '1' })).toBe(true);
    expect(await store.create(newTask('after', 4))).toEqual({ created: true });
    expect(await store.get('before')).toMatchObject({ status: 'completed', attempts: 1 });
    expect((await store.unfinished()).map((t) => t.taskId)).toEqual(['after']);
    await store.close();
  });

  it('rejects connect when no server answers', async () => {
    const dead = await startRedisServer();
    const url = dead.url;
    await dead.stop();
    await expect(RedisTaskStore.connect({ url, logger })).rejects.toThrow();
  });
});
