#!/usr/bin/env node
/**
 * `npm run benchmark:routing`: the routing core's decision time as the fleet and the label set
 * grow. Each step submits a task for a random label and finishes it at once (so workers keep
 * becoming free and the policy really chooses); the time per submit+finish pair is reported.
 */
import { Command } from 'commander';
import { Router, seededRandom, type PolicyName } from '@smart-routing/dispatcher/routing';

const o = new Command('benchmark:routing')
  .option('--policy <name>', 'routing policy', 'affinity')
  .option('--decisions <n>', 'decisions per cell', '20000')
  .parse()
  .opts<{ policy: string; decisions: string }>();

const workerCounts = [10, 100, 1000, 10000];
const labelCounts = [10, 100, 1000, 10000];
const decisions = Number(o.decisions);

function cell(workers: number, labels: number): number {
  const rng = seededRandom(workers * 7919 + labels);
  const router = new Router({
    policy: o.policy as PolicyName,
    random: rng,
    maxQueue: 1e9,
    maxQueuePerLabel: 1e9,
  });
  let now = 0;
  for (let i = 0; i < workers; i++) {
    const loaded = [`l${Math.floor(rng() * labels)}`, `l${Math.floor(rng() * labels)}`].filter(
      (l, j, a) => a.indexOf(l) === j,
    );
    router.addWorker(now, {
      id: `w${i}`,
      labelCapacity: 2,
      taskSlots: 1,
      loadedLabels: loaded,
      taskTypes: ['t'],
    });
  }
  // Keep half the fleet busy so both the holder and the fallback paths are exercised.
  const busy: { task: string; worker: string }[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < decisions; i++) {
    now += 1;
    const out = router.submit(now, { id: `t${i}`, label: `l${Math.floor(rng() * labels)}`, taskType: 't' });
    for (const d of out) if (d.type === 'send') busy.push({ task: d.taskId, worker: d.workerId });
    while (busy.length > workers / 2 || (busy.length > 0 && router.queuedCount > 0)) {
      const done = busy.shift()!;
      for (const d of router.taskFinished(now, done.worker, done.task, { runMs: 5 }))
        if (d.type === 'send') busy.push({ task: d.taskId, worker: d.workerId });
    }
  }
  return Number(process.hrtime.bigint() - started) / 1000 / decisions;
}

console.log(
  `policy ${o.policy}: microseconds per decision (submit + finish), ${decisions} decisions per cell`,
);
console.log(['workers \\ labels', ...labelCounts.map(String)].map((s) => s.padStart(16)).join(''));
for (const w of workerCounts) {
  const row = labelCounts.map((l) => cell(w, l).toFixed(2));
  console.log([String(w), ...row].map((s) => s.padStart(16)).join(''));
}
