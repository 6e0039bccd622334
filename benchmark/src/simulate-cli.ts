#!/usr/bin/env node
/**
 * `npm run simulate -- [traffic flags]`: the routing policies on modelled workers with a virtual
 * clock (see simulator.ts). Load and run times come from flags or from a previous benchmark's JSON
 * (`--from benchmark/results/over-capacity.json`).
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { simulate } from './simulator.js';
import { missFloor } from './summary.js';
import { parseLabelDistribution, planTraffic, type LabelDistribution } from './traffic.js';

const POLICIES = ['random', 'idle-first', 'affinity'];
const program: Command = new Command('simulate')
  .option('--requests <n>', 'total requests', '2400')
  .option('--producers <n>', 'concurrent producers', '2')
  .option('--wait-avg <s>', 'closed loop mean wait, seconds', '2.5')
  .option('--wait-stddev <s>', 'closed loop wait standard deviation, seconds', '1.0')
  .option('--labels <n>', 'distinct labels', '5')
  .option('--workers <n>', 'workers', '2')
  .option('--label-capacity <n>', 'labels per worker', '2')
  .option('--slots <n>', 'task slots per worker', '1')
  .option('--random-dispatch', 'the random policy', false)
  .addOption(new Option('--policy <name>', 'routing policy').choices(POLICIES).default('affinity'))
  .option('--seed <n>', 'RNG seed', '1')
  .option('--label-dist <dist>', 'uniform | zipf:<s>', 'uniform')
  .addOption(
    new Option('--arrival <mode>', 'closed or open loop').choices(['closed', 'open']).default('closed'),
  )
  .option('--rate <n>', 'open loop arrival rate, tasks/s', '4')
  .option('--load-ms <n>', 'modelled load time per label, ms', '450')
  .option('--run-ms <n>', 'modelled run time per task, ms', '10')
  .option('--from <file>', 'a benchmark JSON: use its measured load time per label and run time')
  .option('--compare', 'all three policies', false)
  .parse();

const o = program.opts<Record<string, string | boolean | undefined>>();
const num = (k: string): number => {
  const n = Number(o[k]);
  if (!Number.isFinite(n) || n < 0)
    program.error(
      `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a non-negative number, got "${String(o[k])}"`,
    );
  return n;
};
let labelDist: LabelDistribution = { kind: 'uniform' };
try {
  labelDist = parseLabelDistribution(String(o.labelDist));
} catch (err) {
  program.error((err as Error).message);
}
let loadMs: number | Record<string, number> = num('loadMs');
let runMs = num('runMs');
if (o.from) {
  const prev = JSON.parse(await readFile(String(o.from), 'utf8')) as {
    results: { live: { loadMsByLabel: Record<string, number>; meanRunMs: number | null } }[];
  };
  const live = prev.results.at(-1)?.live;
  if (live && Object.keys(live.loadMsByLabel).length) loadMs = live.loadMsByLabel;
  if (live?.meanRunMs) runMs = live.meanRunMs;
}
const traffic = {
  requests: num('requests'),
  producers: num('producers'),
  labels: num('labels'),
  labelDist,
  arrival: o.arrival as 'closed' | 'open',
  waitAvgS: num('waitAvg'),
  waitStddevS: num('waitStddev'),
  rate: num('rate'),
  seed: num('seed'),
};
const workers = num('workers');
const labelCapacity = num('labelCapacity');
const policies = o.compare ? POLICIES : [o.randomDispatch ? 'random' : String(o.policy)];
const labels = planTraffic(traffic)
  .flat()
  .sort((a, b) => a.index - b.index)
  .map((r) => r.label);
const floor = missFloor(
  labels,
  workers * labelCapacity,
  labelDist.kind === 'uniform' && traffic.arrival === 'closed' ? traffic.labels : undefined,
);
console.log(`miss floor: ${floor}`);
for (const policy of policies) {
  const r = simulate({ traffic, policy, workers, labelCapacity, slots: num('slots'), loadMs, runMs });
  console.log(
    `${policy.padEnd(10)} misses ${String(r.labelMisses).padStart(5)}  completed ${r.completed}  rejected ${r.rejected}  evictions ${r.evictions}  ` +
      `latency ms mean ${r.latencyMs.mean.toFixed(1)} p50 ${r.latencyMs.p50.toFixed(1)} p95 ${r.latencyMs.p95.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)}  virtual ${r.virtualS.toFixed(0)} s`,
  );
}
