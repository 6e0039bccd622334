import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/routing/random.js';
import { Router, type RouterOptions } from '../../src/routing/router.js';
import type { Decision, PolicyName, WorkerInfo } from '../../src/routing/types.js';

type Send = Extract<Decision, { type: 'send' }>;

function info(id: string, labels: string[] = [], extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id,
    labelCapacity: 2,
    taskSlots: 1,
    loadedLabels: labels,
    taskTypes: ['embed_texts', 'echo'],
    ...extra,
  };
}

function router(policy: PolicyName, options: RouterOptions = {}): Router {
  return new Router({ policy, random: seededRandom(42), ...options });
}

let seq = 0;
function task(label: string, taskType = 'embed_texts') {
  return { id: `t${++seq}`, label, taskType };
}

function onlySend(decisions: Decision[]): Send {
  const sends = decisions.filter((d): d is Send => d.type === 'send');
  expect(sends).toHaveLength(1);
  return sends[0]!;
}

/** Teaches the router a label's load time and run time, as a worker's reports would. */
function teach(r: Router, label: string, loadMs: number, runMs: number): void {
  r.costs.observeLoad(label, loadMs);
  r.costs.observeRun(label, runMs);
}

describe('affinity', () => {
  it('picks the idle holder of the label', () => {
    const r = router('affinity');
    r.addWorker(0, info('w1', ['b']));
    r.addWorker(0, info('w2', ['a', 'c']));
    r.addWorker(0, info('w3'));
    const send = onlySend(r.submit(1, task('a')));
    expect(send).toMatchObject({ workerId: 'w2', evictLabel: undefined, expectMiss: false });
  });

  it('waits for a busy holder while the expected wait is below the load time', () => {
    const r = router('affinity');
    teach(r, 'a', 1000, 100);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2'));
    expect(onlySend(r.submit(1, task('a'))).workerId).toBe('w1');
    // w1 is busy; expected wait 100 ms * (0 + 1) / 1 slot < 1000 ms load: wait.
    const t = task('a');
    expect(r.submit(2, t)).toEqual([{ type: 'queue', taskId: t.id, queue: 'a' }]);
    expect(r.worker('w2')!.inFlight.size).toBe(0);
  });

  it('loads on an idle worker when waiting would cost more than loading', () => {
    const r = router('affinity');
    teach(r, 'a', 50, 100);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2'));
    r.submit(1, task('a'));
    // Expected wait 100 ms >= 50 ms load: w2 loads the label.
    const send = onlySend(r.submit(2, task('a')));
    expect(send).toMatchObject({ workerId: 'w2', expectMiss: true, evictLabel: undefined });
    expect(r.worker('w2')!.labels).toEqual(['a']);
    expect(r.worker('w2')!.loading.has('a')).toBe(true);
  });

  it('gains a copy once the backlog makes waiting dearer, sending the oldest waiting task', () => {
    const r = router('affinity');
    teach(r, 'a', 1000, 100);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2', ['x', 'y']));
    r.submit(0, task('a'));
    const waiting: string[] = [];
    // Expected wait for the k-th queued task is 100 * k; at k = 10 it reaches the 1000 ms load.
    for (let k = 1; k <= 9; k++) {
      const t = task('a');
      waiting.push(t.id);
      expect(r.submit(k, t)[0]!.type).toBe('queue');
    }
    const t10 = task('a');
    const decisions = r.submit(10, t10);
    const send = onlySend(decisions);
    expect(send).toMatchObject({ taskId: waiting[0], workerId: 'w2', evictLabel: 'y' });
    expect(decisions).toContainEqual({ type: 'queue', taskId: t10.id, queue: 'a' });
    expect(r.queues.headOf('a')!.task.id).toBe(waiting[1]);
  });

  it('evicts the least recently used label of the fleet', () => {
    const r = router('affinity');
    r.addWorker(100, info('w1', ['a', 'b']));
    r.addWorker(0, info('w2', ['c', 'd'])); // older stamps: d, then c, were used longest ago
    const e = task('e');
    expect(onlySend(r.submit(200, e))).toMatchObject({ workerId: 'w2', evictLabel: 'd' });
    r.taskFinished(210, 'w2', e.id, { runMs: 5, loadedLabels: ['e', 'c'] });
    const f = task('f');
    expect(onlySend(r.submit(300, f))).toMatchObject({ workerId: 'w2', evictLabel: 'c' });
    r.taskFinished(310, 'w2', f.id, { runMs: 5, loadedLabels: ['f', 'e'] });
    // Now w1's b (stamped ~100) is older than anything on w2 (200 and later).
    expect(onlySend(r.submit(400, task('g')))).toMatchObject({ workerId: 'w1', evictLabel: 'b' });
  });

  it('prefers a free label slot over evicting', () => {
    const r = router('affinity');
    r.addWorker(0, info('w1', ['a', 'b']));
    r.addWorker(0, info('w2', ['c']));
    expect(onlySend(r.submit(1, task('z')))).toMatchObject({ workerId: 'w2', evictLabel: undefined });
  });

  it('never evicts the only copy of a label with queued work', () => {
    const r = router('affinity');
    // w1 holds the only copy of b; b's queued task is an `infer` task w1 does not serve, so it
    // waits for a worker that does, and b must stay.
    r.addWorker(0, info('w1', ['a', 'b'], { taskTypes: ['embed_texts'] }));
    r.submit(1, task('b', 'infer'));
    expect(r.queues.countForLabel('b')).toBe(1);
    expect(r.worker('w1')!.labels.at(-1)).toBe('b');
    expect(onlySend(r.submit(2, task('c')))).toMatchObject({ workerId: 'w1', evictLabel: 'a' });
  });

  it('does not take a worker whose every label is protected or in use', () => {
    const r = router('affinity');
    r.addWorker(0, info('w1', ['a', 'b'], { taskTypes: ['embed_texts'], taskSlots: 2 }));
    r.submit(1, task('a')); // a is in use
    r.submit(1, task('b', 'infer')); // b: only copy, queued work (w1 cannot run infer)
    const t = task('c');
    expect(r.submit(2, t)).toEqual([{ type: 'queue', taskId: t.id, queue: 'c' }]);
  });

  it('serves the queues of held labels first when a slot frees, else the oldest task nobody holds', () => {
    const r = router('affinity');
    teach(r, 'a', 1e6, 1);
    teach(r, 'b', 1e6, 1);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2', ['b']));
    const first = r.submit(0, task('a'));
    const running = task('b');
    r.submit(0, running);
    const qa = task('a');
    const qb = task('b');
    r.submit(1, qa);
    r.submit(2, qb);
    // w2 frees: it holds b, so it takes qb although qa is older.
    expect(onlySend(r.taskFinished(3, 'w2', running.id, { runMs: 1 })).taskId).toBe(qb.id);
    // w2 frees again: qa waits by choice for w1 (1 ms expected against a 1e6 ms load), so w2 does
    // not load a for it (regression: it used to, making a second copy and a miss).
    const qc = task('c');
    expect(r.submit(4, qc)).toEqual([{ type: 'queue', taskId: qc.id, queue: 'c' }]);
    const send = onlySend(r.taskFinished(5, 'w2', qb.id, { runMs: 1, loadedLabels: ['b'] }));
    expect(send).toMatchObject({ taskId: qc.id, workerId: 'w2', evictLabel: undefined, expectMiss: true });
    expect(r.queues.has(qa.id)).toBe(true);
    expect(onlySend(first).workerId).toBe('w1');
  });

  it('places a waiting task on a tick once waiting is expected to cost more than a load', () => {
    const r = router('affinity');
    teach(r, 'a', 500, 100);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2'));
    r.submit(0, task('a'));
    const t = task('a');
    r.submit(10, t);
    // Expected wait 100 ms < 500 ms load: wait, even past one load time...
    expect(r.tick(400)).toEqual([]);
    expect(r.tick(510)).toEqual([]);
    // ...until run times learned meanwhile (another holder reported a slow run: EWMA 670 ms) make
    // waiting dearer than loading.
    r.costs.observeRun('a', 2000);
    expect(onlySend(r.tick(530))).toMatchObject({ taskId: t.id, workerId: 'w2', expectMiss: true });
  });

  it('places a waiting task on a tick after two load times when its holder never frees', () => {
    const r = router('affinity');
    teach(r, 'a', 500, 100);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2'));
    r.submit(0, task('a'));
    const t = task('a');
    r.submit(10, t);
    expect(r.tick(1000)).toEqual([]);
    expect(onlySend(r.tick(1011))).toMatchObject({ taskId: t.id, workerId: 'w2', expectMiss: true });
  });
});

describe('idle-first', () => {
  it('picks an idle holder at random', () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const r = new Router({ policy: 'idle-first', random: seededRandom(seed) });
      r.addWorker(0, info('w1', ['a']));
      r.addWorker(0, info('w2', ['a', 'b']));
      r.addWorker(0, info('w3', []));
      seen.add(onlySend(r.submit(1, task('a'))).workerId);
    }
    expect(seen).toEqual(new Set(['w1', 'w2']));
  });

  it('else the idle worker with the fewest labels that has a free label slot', () => {
    const r = router('idle-first');
    r.addWorker(0, info('w1', ['x']));
    r.addWorker(0, info('w2', ['y', 'z']));
    r.addWorker(0, info('w3', []));
    expect(onlySend(r.submit(1, task('a')))).toMatchObject({ workerId: 'w3', evictLabel: undefined });
  });

  it('does not wait for a busy holder', () => {
    const r = router('idle-first');
    teach(r, 'a', 1e6, 1);
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2', []));
    r.submit(0, task('a'));
    expect(onlySend(r.submit(1, task('a'))).workerId).toBe('w2');
  });

  it('else the idle worker that has waited longest, evicting its least recently used label', () => {
    const r = router('idle-first');
    r.addWorker(0, info('w1', ['p', 'q']));
    r.addWorker(0, info('w2', ['r', 's']));
    r.addWorker(0, info('w3', ['t', 'u']));
    // Occupy w1 then free it: it becomes the most recent to wait.
    const t1 = task('p');
    r.submit(1, t1);
    r.taskFinished(2, 'w1', t1.id, { runMs: 1, loadedLabels: ['p', 'q'] });
    expect(onlySend(r.submit(3, task('z')))).toMatchObject({ workerId: 'w2', evictLabel: 's' });
  });

  it('queues in one FIFO taken by whichever worker frees first', () => {
    const r = router('idle-first');
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2', ['b']));
    const ta = task('a');
    const tb = task('b');
    r.submit(0, ta);
    r.submit(0, tb);
    const q1 = task('b');
    const q2 = task('a');
    expect(r.submit(1, q1)).toEqual([{ type: 'queue', taskId: q1.id, queue: '*' }]);
    r.submit(2, q2);
    // w1 (holding a) frees first and takes the oldest task, q1 on b, evicting nothing (free slot).
    expect(onlySend(r.taskFinished(3, 'w1', ta.id, { runMs: 1 }))).toMatchObject({
      taskId: q1.id,
      workerId: 'w1',
    });
  });
});

describe('random', () => {
  it('ignores labels', () => {
    const r = router('random');
    r.addWorker(0, info('w1', ['a']));
    r.addWorker(0, info('w2', ['b', 'c']));
    const counts = { w1: 0, w2: 0 } as Record<string, number>;
    for (let i = 0; i < 400; i++) {
      const t = task(i % 2 ? 'a' : 'x');
      const send = onlySend(r.submit(i, t));
      counts[send.workerId]!++;
      r.taskFinished(i, send.workerId, t.id, { runMs: 1 });
    }
    // Label-aware routing would send every `a` to w1; uniform routing splits ~200/200.
    expect(counts.w1).toBeGreaterThan(160);
    expect(counts.w2).toBeGreaterThan(160);
  });

  it('evicts the chosen worker’s least recently used label when it is full', () => {
    const r = router('random');
    r.addWorker(0, info('w1', ['a', 'b']));
    expect(onlySend(r.submit(1, task('c')))).toMatchObject({ workerId: 'w1', evictLabel: 'b' });
  });

  it('queues in the common FIFO when no worker is free', () => {
    const r = router('random');
    r.addWorker(0, info('w1'));
    const t1 = task('a');
    r.submit(0, t1);
    const t2 = task('b');
    const t3 = task('a');
    r.submit(1, t2);
    r.submit(2, t3);
    expect(onlySend(r.taskFinished(3, 'w1', t1.id, { runMs: 1 })).taskId).toBe(t2.id);
  });
});

describe('every policy', () => {
  for (const policy of ['random', 'idle-first', 'affinity'] as const) {
    it(`${policy}: sends only to workers that serve the task type`, () => {
      const r = router(policy);
      r.addWorker(0, info('w1', ['a'], { taskTypes: ['infer'] }));
      r.addWorker(0, info('w2', [], { taskTypes: ['embed_texts'] }));
      for (let i = 0; i < 10; i++) {
        const t = task('a', 'embed_texts');
        expect(onlySend(r.submit(i, t)).workerId).toBe('w2');
        r.taskFinished(i, 'w2', t.id, { runMs: 1 });
      }
    });
  }
});
