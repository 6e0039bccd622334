import { describe, expect, it } from 'vitest';
import { STARVATION_LOAD_MULTIPLE } from '../../src/routing/policies/affinity.js';
import { seededRandom } from '../../src/routing/random.js';
import { Router } from '../../src/routing/router.js';
import type { Decision } from '../../src/routing/types.js';

describe('affinity under saturation', () => {
  it('serves a label no worker holds once it has waited STARVATION_LOAD_MULTIPLE load times', () => {
    // Regression: two workers, each the only holder of a label whose queue never empties, kept
    // serving their own queues and a task for a third label waited until its producer timed out.
    const router = new Router({
      policy: 'affinity',
      random: seededRandom(7),
      maxQueue: 1e6,
      maxQueuePerLabel: 1e6,
    });
    const loadMs = 1000; // the cost model's default before any load is measured
    const runMs = 50;
    const running = new Map<string, string>(); // worker -> task
    let seq = 0;
    let cSentAt: number | undefined;
    const apply = (now: number, decisions: Decision[]): void => {
      for (const d of decisions) {
        if (d.type !== 'send') continue;
        running.set(d.workerId, d.taskId);
        if (d.taskId === 'c') cSentAt = now;
      }
    };
    apply(
      0,
      router.addWorker(0, { id: 'w1', labelCapacity: 1, taskSlots: 1, loadedLabels: ['a'], taskTypes: [] }),
    );
    apply(
      0,
      router.addWorker(0, { id: 'w2', labelCapacity: 1, taskSlots: 1, loadedLabels: ['b'], taskTypes: [] }),
    );
    for (let i = 0; i < 20; i++) {
      for (const label of ['a', 'b'])
        apply(0, router.submit(0, { id: `${label}${seq++}`, label, taskType: 't' }));
    }
    apply(0, router.submit(0, { id: 'c', label: 'c', taskType: 't' }));
    for (let now = runMs; now <= 20_000 && cSentAt === undefined; now += runMs) {
      for (const [worker, task] of [...running]) {
        running.delete(worker);
        const label = task === 'c' ? 'c' : task[0]!;
        // Each finished a/b task brings another: the holders' queues never drain.
        if (task !== 'c') apply(now, router.submit(now, { id: `${label}${seq++}`, label, taskType: 't' }));
        apply(
          now,
          router.taskFinished(now, worker, task, { runMs, loadedLabels: router.worker(worker)!.labels }),
        );
      }
      apply(now, router.tick(now));
    }
    expect(cSentAt).toBeDefined();
    expect(cSentAt!).toBeGreaterThanOrEqual(STARVATION_LOAD_MULTIPLE * loadMs);
    expect(cSentAt!).toBeLessThanOrEqual(STARVATION_LOAD_MULTIPLE * loadMs + 2 * runMs);
  });
});
