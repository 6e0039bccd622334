#!/usr/bin/env node
/**
 * `npm run simulate -- [--scenario <name>] [traffic flags]`: the routing policies on modelled
 * workers with a virtual clock (see simulator.ts). A scenario (scenarios.ts) sets fleet, traffic and
 * costs; flags given on the command line override it. Load and run times can also come from a
 * previous benchmark's JSON (`--from benchmark/results/over-capacity.json`).
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { SCENARIOS, scenario, scenarioFloor, type Scenario } from './scenarios.js';
import { simulate } from './simulator.js';
import { parseLabelDistribution, type LabelDistribution } from './traffic.js';

const POLICIES = ['random', 'idle-first', 'affinity'];
const program: Command = new Command('simulate')
  .addOption(new Option('--scenario <name>', 'a named scenario').choices(Object.keys(SCENARIOS)))
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
const base: Scenario | undefined = o.scenario ? scenario(String(o.scenario)) : undefined;
/** A flag's value when given on the command line (or there is no scenario), else undefined. */
const given = (k: string): boolean => !base || program.getOptionValueSource(k) === 'cli';
const num = (k: string): number => {
  const n = Number(o[k]);
  if (!Number.isFinite(n) || n < 0)
    program.error(
      `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a non-negative number, got "${String(o[k])}"`,
    );
  return n;
};
const pick = <T>(k: string, fromScenario: T | undefined, fromFlag: () => T): T =>
  given(k) || fromScenario === undefined ? fromFlag() : fromScenario;

let labelDist: LabelDistribution = base?.traffic.labelDist ?? { kind: 'uniform' };
if (given('labelDist')) {
  try {
    labelDist = parseLabelDistribution(String(o.labelDist));
  } catch (err) {
    program.error((err as Error).message);
  }
}
let loadMs: number | Readonly<Record<string, number>> = pick('loadMs', base?.loadMs, () => num('loadMs'));
let runMs = pick('runMs', base?.runMs, () => num('runMs'));
if (o.from) {
  const prev = JSON.parse(await readFile(String(o.from), 'utf8')) as {
    results: { live: { loadMsByLabel: Record<string, number>; meanRunMs: number | null } }[];
  };
  const live = prev.results.at(-1)?.live;
  if (live && Object.keys(live.loadMsByLabel).length) loadMs = live.loadMsByLabel;
  if (live?.meanRunMs) runMs = live.meanRunMs;
}
const t = base?.traffic;
const s: Scenario = {
  name: base?.name ?? 'flags',
  description: base?.description ?? 'from flags',
  traffic: {
    requests: pick('requests', t?.requests, () => num('requests')),
    producers: pick('producers', t?.producers, () => num('producers')),
    labels: pick('labels', t?.labels, () => num('labels')),
    labelDist,
    arrival: pick('arrival', t?.arrival, () => o.arrival as 'closed' | 'open'),
    waitAvgS: pick('waitAvg', t?.waitAvgS, () => num('waitAvg')),
    waitStddevS: pick('waitStddev', t?.waitStddevS, () => num('waitStddev')),
    rate: pick('rate', t?.rate, () => num('rate')),
    seed: pick('seed', t?.seed, () => num('seed')),
  },
  workers: pick('workers', base?.workers, () => num('workers')),
  labelCapacity: pick('labelCapacity', base?.labelCapacity, () => num('labelCapacity')),
  slots: pick('slots', base?.slots, () => num('slots')),
  loadMs,
  runMs,
  memoryBudgetBytes: base?.memoryBudgetBytes,
  footprintBytes: base?.footprintBytes,
};
const policies = o.compare ? POLICIES : [o.randomDispatch ? 'random' : String(o.policy)];
const floor = scenarioFloor(s);
console.log(`scenario ${s.name}: ${s.description}`);
console.log(
  `miss bound: ${floor} (${s.memoryBudgetBytes !== undefined ? "Belady's offline optimum by size, a reference" : s.traffic.arrival === 'open' || s.traffic.labelDist.kind !== 'uniform' ? "Belady's offline optimum" : 'uniform closed-loop bound (expected)'})`,
);
for (const policy of policies) {
  const r = simulate({
    traffic: s.traffic,
    policy,
    workers: s.workers,
    labelCapacity: s.labelCapacity,
    slots: s.slots,
    loadMs: s.loadMs,
    runMs: s.runMs,
    memoryBudgetBytes: s.memoryBudgetBytes,
    footprintBytes: s.footprintBytes,
  });
  console.log(
    `${policy.padEnd(10)} misses ${String(r.labelMisses).padStart(5)} (${(r.labelMisses / Math.max(1, floor)).toFixed(2)}x floor)  loads ${r.loads}  self-evictions ${r.selfEvictions}  completed ${r.completed}  rejected ${r.rejected}  evictions ${r.evictions}  ` +
      `latency ms mean ${r.latencyMs.mean.toFixed(1)} p50 ${r.latencyMs.p50.toFixed(1)} p95 ${r.latencyMs.p95.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)}  virtual ${r.virtualS.toFixed(0)} s`,
  );
}
