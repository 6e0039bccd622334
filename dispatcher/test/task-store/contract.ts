/**
 * The TaskStore contract, run against every store (memory, SQLite, Redis) by its own test file:
 * the same calls must give the same answers whatever keeps the records.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidCursorError } from '../../src/task-store/task-page.js';
import type { NewTaskRecord, TaskRecord, TaskStatus, TaskStore } from '../../src/task-store/task-store.js';

/** Opens a fresh, empty store for one test; `cleanup` runs after it is closed. */
export type StoreFactory = () => Promise<{ store: TaskStore; cleanup?: () => Promise<void> }>;

/** A new task with defaults, queued at `queuedAt`. */
export function newTask(taskId: string, queuedAt: number, extra: Partial<NewTaskRecord> = {}): NewTaskRecord {
  return {
    taskId,
    taskType: 'embed_texts',
    label: 'minilm',
    parametersJson: '{"texts":["a"]}',
    mode: 'async',
    priority: 0,
    queuedAt,
    ...extra,
  };
}

/** Registers the contract's tests for the store `open` makes. */
export function describeTaskStoreContract(name: string, open: StoreFactory): void {
  describe(`${name} task store contract`, () => {
    let store: TaskStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(async () => {
      await store.close();
      await cleanup?.();
    });

    describe('#create', () => {
      it('stores a queued task with every field the producer sent', async () => {
        const task = newTask('t1', 1000, {
          mode: 'sync',
          priority: 7,
          callbackUrl: 'http://127.0.0.1:9/cb',
          tenant: 'team-a',
          expiresAt: 5000,
          parametersJson: '{"texts":["ünïcode ✓ \\u0000"]}',
        });
        expect(await store.create(task)).toEqual({ created: true });
        const got = await store.get('t1');
        expect(got).toStrictEqual({ ...task, status: 'queued', attempts: 0 });
      });

      it('refuses a duplicate id, keeps the first record and returns it', async () => {
        await store.create(newTask('dup', 1000, { label: 'first' }));
        await store.markRunning('dup', 'w1', 1100);
        const again = await store.create(newTask('dup', 2000, { label: 'second' }));
        expect(again.created).toBe(false);
        if (again.created) return;
        expect(again.existing.label).toBe('first');
        expect(again.existing.status).toBe('running');
        expect((await store.get('dup'))?.queuedAt).toBe(1000);
        expect((await store.countByStatus()).running).toBe(1);
      });

      it('under concurrent creates of one id, exactly one wins', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.create(newTask('race', 1000 + i))),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect((await store.countByStatus()).queued).toBe(1);
      });
    });

    describe('#get', () => {
      it('is undefined for an unknown id', async () => {
        expect(await store.get('nope')).toBeUndefined();
      });
    });

    describe('#markRunning / #markQueued', () => {
      it('counts attempts, records the worker and goes back to queued', async () => {
        await store.create(newTask('t', 1000));
        expect(await store.markRunning('t', 'w1', 1100)).toBe(true);
        let got = await store.get('t');
        expect(got).toMatchObject({ status: 'running', attempts: 1, workerId: 'w1', startedAt: 1100 });
        expect(await store.markQueued('t')).toBe(true);
        got = await store.get('t');
        expect(got).toMatchObject({ status: 'queued', attempts: 1 });
        expect(await store.markRunning('t', 'w2', 1200)).toBe(true);
        got = await store.get('t');
        expect(got).toMatchObject({ status: 'running', attempts: 2, workerId: 'w2', startedAt: 1200 });
        expect(got?.finishedAt).toBeUndefined();
      });

      it('are false for an unknown or ended task and change nothing', async () => {
        expect(await store.markRunning('nope', 'w1', 1)).toBe(false);
        expect(await store.markQueued('nope')).toBe(false);
        expect(await store.get('nope')).toBeUndefined();
        await store.create(newTask('t', 1000));
        await store.finish('t', { status: 'cancelled', finishedAt: 1500 });
        expect(await store.markRunning('t', 'w1', 1600)).toBe(false);
        expect(await store.markQueued('t')).toBe(false);
        expect(await store.get('t')).toMatchObject({ status: 'cancelled', attempts: 0 });
        expect((await store.get('t'))?.workerId).toBeUndefined();
      });
    });

    describe('#finish', () => {
      it('stores the result, worker and miss of a completed task', async () => {
        await store.create(newTask('t', 1000));
        await store.markRunning('t', 'w1', 1100);
        const ok = await store.finish('t', {
          status: 'completed',
          finishedAt: 1300,
          resultJson: '{"embeddings":[[0.5]]}',
          workerId: 'w1',
          labelMiss: true,
        });
        expect(ok).toBe(true);
        expect(await store.get('t')).toStrictEqual({
          ...newTask('t', 1000),
          status: 'completed',
          attempts: 1,
          workerId: 'w1',
          startedAt: 1100,
          finishedAt: 1300,
          resultJson: '{"embeddings":[[0.5]]}',
          labelMiss: true,
        });
      });

      it('stores the error of a failed task, labelMiss false included', async () => {
        await store.create(newTask('t', 1000));
        await store.markRunning('t', 'w1', 1100);
        await store.finish('t', {
          status: 'failed',
          finishedAt: 1200,
          error: { code: 'task_failed', message: 'boom' },
          labelMiss: false,
        });
        const got = await store.get('t');
        expect(got).toMatchObject({
          status: 'failed',
          error: { code: 'task_failed', message: 'boom' },
          labelMiss: false,
        });
        expect(got?.resultJson).toBeUndefined();
      });

      it('a second finish is ignored: the first outcome stays', async () => {
        await store.create(newTask('t', 1000));
        expect(await store.finish('t', { status: 'completed', finishedAt: 1200, resultJson: '1' })).toBe(
          true,
        );
        expect(
          await store.finish('t', { status: 'failed', finishedAt: 1300, error: { code: 'x', message: 'y' } }),
        ).toBe(false);
        const got = await store.get('t');
        expect(got).toMatchObject({ status: 'completed', finishedAt: 1200, resultJson: '1' });
        expect(got?.error).toBeUndefined();
        expect(await store.countByStatus()).toMatchObject({ completed: 1, failed: 0 });
      });

      it('under concurrent finishes of one task, exactly one is stored', async () => {
        await store.create(newTask('t', 1000));
        await store.markRunning('t', 'w1', 1100);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.finish('t', { status: 'completed', finishedAt: 2000 + i, resultJson: String(i) }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect(await store.get('t')).toMatchObject({ resultJson: String(winner), finishedAt: 2000 + winner });
      });

      it('is false for an unknown id and creates nothing', async () => {
        expect(await store.finish('nope', { status: 'expired', finishedAt: 1 })).toBe(false);
        expect(await store.get('nope')).toBeUndefined();
        expect(Object.values(await store.countByStatus()).reduce((a, b) => a + b, 0)).toBe(0);
      });
    });

    describe('#unfinished', () => {
      it('lists queued and running tasks, oldest first, not ended ones', async () => {
        await store.create(newTask('c', 3000));
        await store.create(newTask('a', 1000));
        await store.create(newTask('b2', 2000));
        await store.create(newTask('b1', 2000));
        await store.create(newTask('done', 500));
        await store.markRunning('b2', 'w1', 2500);
        await store.finish('done', { status: 'completed', finishedAt: 600 });
        const ids = (await store.unfinished()).map((t) => t.taskId);
        expect(ids).toEqual(['a', 'b1', 'b2', 'c']);
        expect((await store.unfinished()).find((t) => t.taskId === 'b2')?.status).toBe('running');
        await store.finish('a', { status: 'cancelled', finishedAt: 4000 });
        expect((await store.unfinished()).map((t) => t.taskId)).toEqual(['b1', 'b2', 'c']);
      });
    });

    describe('#list', () => {
      async function fill(): Promise<void> {
        // 12 tasks at 1000..1110 (two share 1050); every third completed.
        for (let i = 0; i < 12; i++) {
          const at = i === 6 ? 1050 : 1000 + i * 10;
          await store.create(newTask(`t${String(i).padStart(2, '0')}`, at));
          if (i % 3 === 0)
            await store.finish(`t${String(i).padStart(2, '0')}`, { status: 'completed', finishedAt: 5000 });
        }
      }

      async function all(query: { status?: TaskStatus; limit?: number }): Promise<TaskRecord[]> {
        const out: TaskRecord[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 100; pages++) {
          const page = await store.list({ ...query, cursor });
          expect(page.tasks.length).toBeLessThanOrEqual(query.limit ?? 50);
          out.push(...page.tasks);
          if (page.nextCursor === undefined) return out;
          cursor = page.nextCursor;
        }
        throw new Error('paging did not end');
      }

      it('pages newest first through every task, each exactly once', async () => {
        await fill();
        const ids = (await all({ limit: 5 })).map((t) => t.taskId);
        expect(ids).toEqual([
          't11',
          't10',
          't09',
          't08',
          't07',
          't06',
          't05',
          't04',
          't03',
          't02',
          't01',
          't00',
        ]);
        const first = await store.list({ limit: 5 });
        expect(first.tasks).toHaveLength(5);
        expect(first.nextCursor).toBeDefined();
      });

      it('filters by status, paged', async () => {
        await fill();
        const completed = await all({ status: 'completed', limit: 2 });
        expect(completed.map((t) => t.taskId)).toEqual(['t09', 't06', 't03', 't00']);
        expect(completed.every((t) => t.status === 'completed')).toBe(true);
        const queued = await all({ status: 'queued', limit: 3 });
        expect(queued).toHaveLength(8);
        expect((await store.list({ status: 'running' })).tasks).toEqual([]);
      });

      it('a page ends without a cursor when nothing is left; default limit 50, at most 500', async () => {
        await fill();
        const page = await store.list({});
        expect(page.tasks).toHaveLength(12);
        expect(page.nextCursor).toBeUndefined();
        const exact = await store.list({ limit: 12 });
        expect(exact.tasks).toHaveLength(12);
        expect(exact.nextCursor).toBeUndefined();
        for (let i = 0; i < 540; i++) await store.create(newTask(`bulk${i}`, 10_000 + i));
        expect((await store.list({})).tasks).toHaveLength(50);
        expect((await store.list({ limit: 10_000 })).tasks).toHaveLength(500);
      });

      it('new tasks in front do not shift the next page', async () => {
        await fill();
        const first = await store.list({ limit: 4 });
        await store.create(newTask('newer', 9999));
        const second = await store.list({ limit: 4, cursor: first.nextCursor });
        expect(second.tasks.map((t) => t.taskId)).toEqual(['t07', 't06', 't05', 't04']);
      });

      it('rejects a cursor it did not hand out', async () => {
        await expect(store.list({ cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
      });
    });

    describe('#countByStatus', () => {
      it('counts every status, zero included', async () => {
        await store.create(newTask('q', 1));
        await store.create(newTask('r', 2));
        await store.create(newTask('c', 3));
        await store.create(newTask('f', 4));
        await store.create(newTask('x', 5));
        await store.create(newTask('e', 6));
        await store.markRunning('r', 'w', 10);
        await store.finish('c', { status: 'completed', finishedAt: 11 });
        await store.finish('f', { status: 'failed', finishedAt: 12, error: { code: 'a', message: 'b' } });
        await store.finish('x', { status: 'cancelled', finishedAt: 13 });
        await store.finish('e', { status: 'expired', finishedAt: 14 });
        await store.create(newTask('q2', 7));
        expect(await store.countByStatus()).toEqual({
          queued: 2,
          running: 1,
          completed: 1,
          failed: 1,
          cancelled: 1,
          expired: 1,
        });
      });
    });

    describe('#prune', () => {
      it('drops ended tasks older than the TTL, never unfinished ones', async () => {
        await store.create(newTask('old', 100));
        await store.create(newTask('fresh', 200));
        await store.create(newTask('queued-old', 50));
        await store.create(newTask('running-old', 60));
        await store.markRunning('running-old', 'w', 70);
        await store.finish('old', { status: 'completed', finishedAt: 1_000 });
        await store.finish('fresh', {
          status: 'failed',
          finishedAt: 9_500,
          error: { code: 'a', message: 'b' },
        });
        expect(await store.prune(10_000, 5_000, 1000)).toBe(1);
        expect(await store.get('old')).toBeUndefined();
        expect(await store.get('fresh')).toBeDefined();
        expect(await store.get('queued-old')).toBeDefined();
        expect(await store.get('running-old')).toBeDefined();
        expect((await store.list({})).tasks.map((t) => t.taskId)).not.toContain('old');
        expect((await store.countByStatus()).completed).toBe(0);
        // A pruned id is unknown again: it can be submitted anew.
        expect(await store.create(newTask('old', 20_000))).toEqual({ created: true });
      });

      it('keeps at most maxResults ended tasks, dropping the oldest finished', async () => {
        for (let i = 0; i < 10; i++) {
          await store.create(newTask(`d${i}`, i));
          await store.finish(`d${i}`, { status: 'completed', finishedAt: 1000 + ((i * 7) % 10) });
        }
        await store.create(newTask('waiting', 0));
        expect(await store.prune(2000, 1_000_000, 4)).toBe(6);
        const left = (await store.list({ status: 'completed' })).tasks.map((t) => t.finishedAt);
        expect(left.sort()).toEqual([1006, 1007, 1008, 1009]);
        expect(await store.get('waiting')).toBeDefined();
        expect(await store.prune(2000, 1_000_000, 4)).toBe(0);
        expect(await store.prune(2000, 1_000_000, 0)).toBe(4);
        expect((await store.unfinished()).map((t) => t.taskId)).toEqual(['waiting']);
      });

      it('prunes many in one call, by age and by count', async () => {
        for (let i = 0; i < 2500; i++) {
          await store.create(newTask(`m${i}`, i));
          await store.finish(`m${i}`, { status: 'completed', finishedAt: i });
        }
        // Age drops finishedAt < 1200 (1200 tasks); the count bound then keeps the newest 300.
        expect(await store.prune(10_000, 8_800, 300)).toBe(2200);
        expect((await store.countByStatus()).completed).toBe(300);
        expect(await store.get('m2199')).toBeUndefined();
        expect(await store.get('m2200')).toBeDefined();
        expect(await store.prune(10_000, 1, 100_000)).toBe(300);
        expect((await store.countByStatus()).completed).toBe(0);
      });
    });

    describe('#close', () => {
      it('is safe twice; later calls reject instead of throwing', async () => {
        await store.create(newTask('t', 1));
        await store.close();
        await store.close();
        const call = store.get('t');
        await expect(call).rejects.toThrow(/closed/);
        await expect(store.create(newTask('u', 2))).rejects.toThrow(/closed/);
      });
    });
  });
}
