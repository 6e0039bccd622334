import { describe, expect, it } from 'vitest';
import { IndexedHeap } from '../../src/routing/indexed-heap.js';
import { IndexedSet } from '../../src/routing/indexed-set.js';
import { LabelCache } from '../../src/routing/label-cache.js';
import { COMMON_QUEUE, TaskQueues } from '../../src/routing/queues.js';
import { seededRandom } from '../../src/routing/random.js';

const task = (id: string, label = 'a') => ({ id, label, taskType: 'echo' });

describe('TaskQueues', () => {
  it('serves each queue and the global order oldest first', () => {
    const q = new TaskQueues();
    q.push(task('t1', 'a'), 'a', 1);
    q.push(task('t2', 'b'), 'b', 2);
    q.push(task('t3', 'a'), 'a', 3);
    expect(q.headOf('a')?.task.id).toBe('t1');
    expect(q.headOf('b')?.task.id).toBe('t2');
    expect([...q.inOrder()].map((n) => n.task.id)).toEqual(['t1', 't2', 't3']);
    q.remove('t1');
    expect(q.headOf('a')?.task.id).toBe('t3');
    expect(q.oldest()?.task.id).toBe('t2');
  });

  it('removes from the middle in O(1) and keeps both lists linked', () => {
    const q = new TaskQueues();
    for (let i = 1; i <= 5; i++) q.push(task(`t${i}`), 'a', i);
    expect(q.remove('t3')?.task.id).toBe('t3');
    expect(q.remove('t3')).toBeUndefined();
    expect([...q.inOrder()].map((n) => n.task.id)).toEqual(['t1', 't2', 't4', 't5']);
    q.remove('t1');
    q.remove('t5');
    expect(q.headOf('a')?.task.id).toBe('t2');
    expect(q.size).toBe(2);
    q.remove('t2');
    q.remove('t4');
    expect(q.size).toBe(0);
    expect(q.oldest()).toBeUndefined();
    expect(q.depths().size).toBe(0);
  });

  it('puts retries at the front of their queue and of the global order', () => {
    const q = new TaskQueues();
    q.push(task('t1'), 'a', 1);
    q.push(task('t2'), 'a', 2);
    q.push(task('r1'), 'a', 3, true);
    q.push(task('r2', 'b'), 'b', 4, true);
    expect(q.headOf('a')?.task.id).toBe('r1');
    expect([...q.inOrder()].map((n) => n.task.id)).toEqual(['r2', 'r1', 't1', 't2']);
    expect(q.get('r2')!.order).toBeLessThan(q.get('r1')!.order);
  });

  it('counts tasks per label across queues and reports depths', () => {
    const q = new TaskQueues();
    q.push(task('t1', 'a'), COMMON_QUEUE, 1);
    q.push(task('t2', 'a'), 'a', 1);
    q.push(task('t3', 'b'), COMMON_QUEUE, 1);
    expect(q.countForLabel('a')).toBe(2);
    expect(q.sizeOf(COMMON_QUEUE)).toBe(2);
    expect(Object.fromEntries(q.depths())).toEqual({ '*': 2, a: 1 });
    expect(() => q.push(task('t1'), 'a', 1)).toThrow(/already queued/);
  });

  it('sums the time the tasks of a label have waited, across queues, as they come and go', () => {
    const q = new TaskQueues();
    expect(q.waitedMsForLabel('a', 50)).toBe(0);
    q.push(task('t1', 'a'), 'a', 10);
    q.push(task('t2', 'a'), COMMON_QUEUE, 30);
    q.push(task('t3', 'b'), 'b', 0);
    expect(q.waitedMsForLabel('a', 40)).toBe(30 + 10);
    q.remove('t1');
    expect(q.waitedMsForLabel('a', 40)).toBe(10);
    q.remove('t2');
    expect(q.waitedMsForLabel('a', 1000)).toBe(0);
    expect(q.waitedMsForLabel('b', 5)).toBe(5);
  });
});

describe('TaskQueues priority', () => {
  const ptask = (id: string, label: string, priority: number) => ({ id, label, taskType: 'echo', priority });

  it('serves higher priority first, FIFO within a priority, retries pushed to the front before all', () => {
    const q = new TaskQueues();
    q.push(ptask('low1', 'a', 0), 'a', 1);
    q.push(ptask('high1', 'a', 9), 'a', 2);
    q.push(ptask('mid1', 'b', 5), 'b', 3);
    q.push(ptask('high2', 'a', 9), 'a', 4);
    q.push(ptask('low2', 'a', 0), 'a', 5);
    q.push(ptask('retry', 'a', 0), 'a', 6, true);
    expect(q.headOf('a')?.task.id).toBe('retry');
    expect([...q.inOrder()].map((n) => n.task.id)).toEqual([
      'retry',
      'high1',
      'high2',
      'mid1',
      'low1',
      'low2',
    ]);
    q.remove('retry');
    q.remove('high1');
    expect(q.headOf('a')?.task.id).toBe('high2');
    expect(q.oldest()?.task.id).toBe('high2');
  });

  it('matches a sorted reference under random pushes and removals', () => {
    const random = seededRandom(7);
    const q = new TaskQueues();
    // Reference: [id, queue, tier, seq] kept sorted by tier desc, then seq (front pushes: negative seq).
    let ref: { id: string; queue: string; tier: number; seq: number }[] = [];
    let back = 0;
    let front = 0;
    for (let i = 0; i < 2000; i++) {
      if (ref.length > 0 && random() < 0.4) {
        const victim = ref[Math.floor(random() * ref.length)]!;
        q.remove(victim.id);
        ref = ref.filter((r) => r !== victim);
      } else {
        const queue = random() < 0.5 ? 'a' : 'b';
        const isFront = random() < 0.1;
        const priority = Math.floor(random() * 10);
        q.push(ptask(`t${i}`, queue, priority), queue, i, isFront);
        ref.push({ id: `t${i}`, queue, tier: isFront ? 10 : priority, seq: isFront ? --front : ++back });
      }
      ref.sort((x, y) => y.tier - x.tier || x.seq - y.seq);
      expect([...q.inOrder()].map((n) => n.task.id)).toEqual(ref.map((r) => r.id));
      for (const queue of ['a', 'b'])
        expect(q.headOf(queue)?.task.id).toBe(ref.find((r) => r.queue === queue)?.id);
    }
  });
});

describe('IndexedHeap', () => {
  it('keeps the smallest key on top through inserts, re-keys and deletes', () => {
    const h = new IndexedHeap<string>();
    const keys: Record<string, number> = { a: 5, b: 3, c: 9, d: 1, e: 7 };
    for (const [k, v] of Object.entries(keys)) h.set(k, v, k);
    expect([...h.ascending()]).toEqual(['d', 'b', 'a', 'e', 'c']);
    expect([...h.ascending(2)]).toEqual(['d', 'b']);
    h.set('c', 0, 'c');
    expect(h.peek()).toBe('c');
    h.delete('c');
    h.delete('d');
    expect([...h.ascending()]).toEqual(['b', 'a', 'e']);
    expect(h.size).toBe(3);
  });

  it('orders a random workload like a sort', () => {
    const random = seededRandom(7);
    const h = new IndexedHeap<number>();
    const live = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const item = Math.floor(random() * 100);
      if (random() < 0.3) {
        h.delete(item);
        live.delete(item);
      } else {
        const key = Math.floor(random() * 50);
        h.set(item, key, String(item).padStart(3, '0'));
        live.set(item, key);
      }
    }
    const expected = [...live.entries()].sort((x, y) => x[1] - y[1] || x[0] - y[0]).map(([item]) => item);
    expect([...h.ascending()]).toEqual(expected);
  });
});

describe('IndexedSet', () => {
  it('adds, deletes and picks uniformly from a random start', () => {
    const s = new IndexedSet<string>();
    for (const x of ['a', 'b', 'c', 'd']) s.add(x);
    s.delete('b');
    expect(s.has('b')).toBe(false);
    expect(new Set(s.fromRandom(seededRandom(1)))).toEqual(new Set(['a', 'c', 'd']));
    const counts = new Map<string, number>();
    const random = seededRandom(3);
    for (let i = 0; i < 3000; i++) {
      const first = s.fromRandom(random, 1).next().value!;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    for (const x of ['a', 'c', 'd']) expect(counts.get(x)).toBeGreaterThan(800);
  });
});

describe('LabelCache', () => {
  it('honours the eviction order, then evicts its own LRU as a safety net', () => {
    const c = new LabelCache(2, ['a', 'b']);
    expect(c.use('c', 'a')).toEqual({ miss: true, evicted: ['a'] });
    expect(c.labels).toEqual(['c', 'b']);
    expect(c.use('b')).toEqual({ miss: false, evicted: [] });
    expect(c.labels).toEqual(['b', 'c']);
    expect(c.use('d')).toEqual({ miss: true, evicted: ['c'] });
    expect(c.labels).toEqual(['d', 'b']);
  });
});
