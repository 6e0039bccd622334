import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/routing/random.js';
import { Router } from '../../src/routing/router.js';
import type { Decision, WorkerInfo } from '../../src/routing/types.js';

type Send = Extract<Decision, { type: 'send' }>;

function info(id: string, labels: string[] = [], extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return { id, labelCapacity: 2, taskSlots: 1, loadedLabels: labels, taskTypes: ['embed_texts'], ...extra };
}

const sends = (decisions: Decision[]) => decisions.filter((d): d is Send => d.type === 'send');
const t = (id: string, label: string) => ({ id, label, taskType: 'embed_texts' });

describe('Router#submit', () => {
  it('rejects past the total and per-label queue limits, but never a retry', () => {
    const r = new Router({ maxQueue: 3, maxQueuePerLabel: 2, random: seededRandom(1) });
    r.addWorker(0, info('w1', ['a']));
    r.submit(0, t('run', 'a'));
    expect(r.submit(1, t('q1', 'a'))[0]!.type).toBe('queue');
    expect(r.submit(1, t('q2', 'a'))[0]!.type).toBe('queue');
    expect(r.submit(1, t('q3', 'a'))).toEqual([{ type: 'reject', taskId: 'q3', reason: 'queue_full' }]);
    expect(r.submit(1, t('q4', 'b'))[0]!.type).toBe('queue');
    expect(r.submit(1, t('q5', 'c'))[0]!.type).toBe('reject');
    expect(r.submit(1, t('retry', 'c'), { front: true })[0]!.type).toBe('queue');
    expect(r.queues.oldest()!.task.id).toBe('retry');
  });

  it('throws on a task id that is already queued or in flight', () => {
    const r = new Router();
    r.addWorker(0, info('w1'));
    r.submit(0, t('x', 'a'));
    expect(() => r.submit(0, t('x', 'a'))).toThrow(/already queued or in flight/);
  });

  it('waits when no worker ever joined, and serves the queue when one does', () => {
    const r = new Router();
    expect(r.submit(0, t('x', 'a'))[0]!.type).toBe('queue');
    expect(r.taskTypeStatus('embed_texts')).toBe('waiting');
    expect(sends(r.addWorker(1, info('w1')))).toMatchObject([
      { taskId: 'x', workerId: 'w1', expectMiss: true },
    ]);
    expect(r.taskTypeStatus('embed_texts')).toBe('served');
    expect(r.taskTypeStatus('nope')).toBe('unknown');
    r.removeWorker(2, 'w1');
    expect(r.taskTypeStatus('embed_texts')).toBe('gone');
  });
});

describe('Router registry picture', () => {
  it('updates optimistically on send and takes the worker’s reports as the truth', () => {
    const r = new Router();
    r.addWorker(0, info('w1', ['a', 'b']));
    const [send] = sends(r.submit(1, t('x', 'c')));
    expect(send).toMatchObject({ workerId: 'w1', evictLabel: 'b', expectMiss: true });
    const w = r.worker('w1')!;
    expect(w.labels).toEqual(['c', 'a']);
    expect([...w.loading]).toEqual(['c']);
    // A heartbeat sent before the worker saw the RunTask: b must not come back, c stays loading.
    r.updateWorker(2, 'w1', { loadedLabels: ['a', 'b'] });
    expect(r.worker('w1')!.labels).toEqual(['c', 'a']);
    // The result is the truth: the worker in fact evicted a too (say it is a smaller machine).
    r.labelEvent(3, 'w1', { kind: 'loaded', label: 'c', durationMs: 40, loadedLabels: ['c', 'a'] });
    r.taskFinished(3, 'w1', 'x', { runMs: 5, labelMiss: true, loadMs: 40, loadedLabels: ['c'] });
    expect(r.worker('w1')!.labels).toEqual(['c']);
    expect(r.worker('w1')!.loading.size).toBe(0);
    expect(r.costs.loadMs('c')).toBe(40);
    expect(Object.fromEntries(r.labelHolders())).toEqual({ c: ['w1'] });
  });

  it('learns a load from its LabelEvent only, never from the TaskResult that reports it again', () => {
    const r = new Router({ costs: { alpha: 0.5, defaultLoadMs: 1000 } });
    r.addWorker(0, info('w1'));
    r.submit(0, t('x', 'a'));
    // The result alone teaches nothing about the load (its load_ms is for the producer).
    r.taskFinished(6, 'w1', 'x', { runMs: 5, labelMiss: true, loadMs: 300, loadedLabels: ['a'] });
    expect(r.costs.loadMs('a')).toBe(1000);
    r.submit(7, t('y', 'b'));
    r.labelEvent(8, 'w1', { kind: 'loaded', label: 'b', durationMs: 100, loadedLabels: ['b', 'a'] });
    r.taskFinished(9, 'w1', 'y', { runMs: 5, labelMiss: true, loadMs: 300, loadedLabels: ['b', 'a'] });
    expect(r.costs.loadMs('b')).toBe(100);
  });

  it('hands back in-flight tasks when a worker leaves, for a retry at the front', () => {
    const r = new Router({ random: seededRandom(3) });
    r.addWorker(0, info('w1', ['a']));
    r.submit(0, t('x', 'a'));
    r.submit(1, t('y', 'a'));
    const orphans = r.removeWorker(2, 'w1');
    expect(orphans.map((o) => o.task.id)).toEqual(['x']);
    expect(r.has('x')).toBe(false);
    r.submit(3, orphans[0]!.task, { front: true });
    expect([...r.queues.inOrder()].map((q) => q.task.id)).toEqual(['x', 'y']);
    expect(sends(r.addWorker(4, info('w2'))).map((s) => s.taskId)).toEqual(['x']);
  });

  it('avoids a label on a worker where it failed to load, until the back-off ends', () => {
    const r = new Router({ failureBackoffMs: 1000 });
    r.addWorker(0, info('w1'));
    r.submit(0, t('x', 'a'));
    expect(r.taskFinished(10, 'w1', 'x', { errorCode: 'label_load_failed', loadedLabels: [] })).toEqual([]);
    expect(r.worker('w1')!.failing.get('a')).toBe(1010);
    expect(r.submit(20, t('x', 'a'))[0]!.type).toBe('queue');
    expect(r.tick(500)).toEqual([]);
    expect(sends(r.tick(1011))).toMatchObject([{ taskId: 'x', workerId: 'w1' }]);
  });

  it('stops sending to a worker that answers draining, and holds one that answers no_slot until it reports', () => {
    const r = new Router();
    r.addWorker(0, info('w1'));
    r.addWorker(0, info('w2'));
    const [first] = sends(r.submit(0, t('x', 'a')));
    r.taskFinished(1, first!.workerId, 'x', { errorCode: 'draining' });
    expect(r.worker(first!.workerId)!.state).toBe('draining');
    const other = first!.workerId === 'w1' ? 'w2' : 'w1';
    expect(sends(r.submit(2, t('x', 'a')))[0]!.workerId).toBe(other);
    r.taskFinished(3, other, 'x', { errorCode: 'no_slot' });
    expect(r.worker(other)!.blocked).toBe(true);
    expect(r.submit(4, t('x', 'a'))[0]!.type).toBe('queue');
    expect(sends(r.updateWorker(5, other, { state: 'ready' }))[0]!.taskId).toBe('x');
  });

  it('cancels a queued task and leaves an in-flight one holding its slot', () => {
    const r = new Router();
    r.addWorker(0, info('w1'));
    r.submit(0, t('x', 'a'));
    r.submit(0, t('y', 'a'));
    expect(r.cancel('y')).toBe('queued');
    expect(r.cancel('x')).toBe('in_flight');
    expect(r.cancel('z')).toBe('unknown');
    expect(r.queuedCount).toBe(0);
    expect(r.worker('w1')!.inFlight.size).toBe(1);
  });

  it('estimates the drain time from queue length, mean run time and slots', () => {
    const r = new Router();
    r.costs.observeRun('a', 200);
    r.addWorker(0, info('w1', [], { taskSlots: 2 }));
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) r.submit(0, t(id, 'a'));
    expect(r.queuedCount).toBe(4);
    expect(r.expectedDrainMs()).toBe(400);
  });
});

describe('Router at scale', () => {
  it('keeps the indices consistent through a long random run', () => {
    const random = seededRandom(11);
    const r = new Router({ random, maxQueue: 1e9, maxQueuePerLabel: 1e9 });
    const labels = Array.from({ length: 30 }, (_, i) => `l${i}`);
    for (let i = 0; i < 50; i++) r.addWorker(0, info(`w${i}`, [], { labelCapacity: 3, taskSlots: 2 }));
    const running = new Map<string, string>();
    let next = 0;
    for (let now = 1; now < 5000; now++) {
      const decisions: Decision[] = [];
      if (random() < 0.6)
        decisions.push(...r.submit(now, t(`t${next++}`, labels[Math.floor(random() * 30)]!)));
      if (running.size > 0 && random() < 0.6) {
        const [id, worker] = running.entries().next().value!;
        running.delete(id);
        const w = r.worker(worker)!;
        decisions.push(...r.taskFinished(now, worker, id, { runMs: 10, loadedLabels: [...w.labels] }));
      }
      decisions.push(...r.tick(now));
      for (const s of sends(decisions)) running.set(s.taskId, s.workerId);
    }
    let inFlight = 0;
    for (const w of r.workers()) {
      expect(w.labels.length).toBeLessThanOrEqual(w.labelCapacity);
      expect(w.inFlight.size).toBeLessThanOrEqual(w.taskSlots);
      inFlight += w.inFlight.size;
      const available = r.registry.isAvailable(w);
      for (const label of w.labels) {
        const holders = [...r.registry.availableHolders(label, random)];
        expect(holders.includes(w as never)).toBe(available);
      }
    }
    expect(inFlight).toBe(running.size);
    expect(r.registry.totalReadySlots).toBe(100);
  });
});
