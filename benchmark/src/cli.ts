#!/usr/bin/env node
/**
 * `npm run benchmark -- [flags]`: replays the original's experiment against a live stack (started
 * here, or `--dispatcher-url`), per policy, on identical traffic, and prints the original's
 * summary lines plus latency percentiles, evictions, load times, the miss bound and the
 * simulator's prediction. `--scenario <name>` runs a simulator scenario (scenarios.ts) live, scaled:
 * its fleet and label mix, open arrival at the rate that keeps the scenario's load time / arrival
 * interval with the load time measured here, and prints whether the live ranking of the policies
 * by misses matches the simulator's. `--quick`: the three policies side by side in about a minute.
 *
 * Progress goes to stderr from the first second (a line per phase, then every 1.5 s: phase,
 * requests done/total, elapsed; `--quiet` turns it off); the report goes to stdout. Flags given on
 * the command line win over a preset's or a scenario's values, and the run says which did.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { generateDemoModels } from '@smart-routing/model-repo';
import { calibrationLogDir, measureLoadTime } from './calibrate.js';
import {
  applyPreset,
  formatOverrides,
  meanArrivalIntervalS,
  presetWaits,
  PRESETS,
  type Preset,
  type PresetOverride,
} from './presets.js';
import { ProgressReporter } from './progress.js';
import { runBenchmark, type RunResult } from './run-benchmark.js';
import { startStack, type Stack } from './stack.js';
import { SCENARIOS, loadToIntervalRatio, scaledRate, scenario, type Scenario } from './scenarios.js';
import { simulate, type SimulationResult } from './simulator.js';
import { formatComparison, formatSummary } from './report.js';
import { parseLabelDistribution, type LabelDistribution, type TrafficOptions } from './traffic.js';

const POLICIES = ['random', 'idle-first', 'affinity'] as const;

const program: Command = new Command('benchmark')
  .description('Benchmark routing policies on a live smart-routing stack.')
  .option('--requests <n>', 'total requests', '2400')
  .option('--producers <n>', 'concurrent producers', '2')
  .option('--wait-avg <s>', 'closed loop: mean wait between a reply and the next request, seconds', '2.5')
  .option(
    '--wait-stddev <s>',
    'closed loop: standard deviation of the wait, seconds (normal, floored at 0)',
    '1.0',
  )
  .option('--labels <n>', 'distinct labels (models)', '5')
  .option('--workers <n>', 'worker processes', '2')
  .option('--label-capacity <n>', 'labels each worker holds', '2')
  .option('--slots <n>', 'concurrent tasks per worker', '1')
  .option('--random-dispatch', 'use the random policy (same as --policy random)', false)
  .addOption(new Option('--policy <name>', 'routing policy').choices([...POLICIES]).default('affinity'))
  .option('--seed <n>', 'RNG seed: the same seed gives every policy the same traffic', '1')
  .option('--label-dist <dist>', 'uniform | zipf:<s>', 'uniform')
  .addOption(
    new Option('--arrival <mode>', 'closed loop (the original) or open loop (Poisson)')
      .choices(['closed', 'open'])
      .default('closed'),
  )
  .option('--rate <n>', 'open loop arrival rate, tasks/s', '4')
  .option(
    '--async-fraction <0..1>',
    'share of requests sent as async tasks (POST /send-task, then polling GET /tasks/{id})',
    '0',
  )
  .option('--dispatcher-url <url>', 'target a running stack instead of starting one')
  .option(
    '--log-file <path>',
    'with --dispatcher-url: the collector file of that stack, to count misses from logs',
  )
  .option('--model-size-mb <n>', 'size of each generated model (sets the load time)', '8')
  .option('--models <dir>', 'model repository the benchmark generates and uses', './.bench-models')
  .option('--log-dir <dir>', 'log collector folder', './logs')
  .option(
    '--model-sizes-mb <list>',
    'heterogeneous models: comma-separated sizes, model i gets the ((i-1) mod n)-th (overrides --model-size-mb)',
  )
  .option(
    '--memory-budget-mb <n>',
    "every worker's memory budget, MiB: the dispatcher evicts by measured footprint until a label fits (with --model-sizes-mb: memory-aware eviction)",
  )
  .addOption(
    new Option(
      '--preset <name>',
      "the original's experiment, time-compressed (flags given on the command line win over it)",
    ).choices(Object.keys(PRESETS)),
  )
  .addOption(
    new Option(
      '--scenario <name>',
      'a simulator scenario, scaled: its fleet and label mix; the rate keeps its load/interval ratio (flags given override)',
    ).choices(Object.keys(SCENARIOS)),
  )
  .option('--compare', 'run random, idle-first and affinity on identical traffic, side by side', false)
  .option(
    '--quick',
    'the three policies side by side in about a minute: --preset quick --compare (5 labels, 2 workers x 2 labels, 100 requests, 2 MB models, no calibration run)',
    false,
  )
  .option('--quiet', 'no progress lines on stderr', false)
  .option('--out <file>', 'write the results as JSON')
  .parse();

const o = program.opts<{
  requests: string;
  producers: string;
  waitAvg: string;
  waitStddev: string;
  labels: string;
  workers: string;
  labelCapacity: string;
  slots: string;
  randomDispatch: boolean;
  policy: string;
  seed: string;
  labelDist: string;
  arrival: 'closed' | 'open';
  rate: string;
  asyncFraction: string;
  dispatcherUrl?: string;
  logFile?: string;
  modelSizeMb: string;
  modelSizesMb?: string;
  memoryBudgetMb?: string;
  models: string;
  logDir: string;
  preset?: Preset['name'];
  scenario?: string;
  compare: boolean;
  quick: boolean;
  quiet: boolean;
  out?: string;
}>();

function positive(name: string, text: string, integer = true): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    program.error(
      `--${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got "${text}"`,
    );
  }
  return n;
}

// Ctrl-C: exit, and the stack's exit hook stops the services it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

if (o.quick && (o.preset || o.scenario))
  program.error('--quick is a preset of its own: it excludes --preset and --scenario');
const preset = o.quick ? PRESETS.quick : o.preset ? PRESETS[o.preset] : undefined;
const compare = o.compare || o.quick;
const scen: Scenario | undefined = o.scenario ? scenario(o.scenario) : undefined;
if (preset && scen) program.error('--preset and --scenario exclude each other');
const progress = new ProgressReporter({ quiet: o.quiet });
const given = (flag: string): boolean => program.getOptionValueSource(flag) === 'cli';
/** A scenario's value unless the flag was given on the command line. */
const fromScenario = <T>(flag: string, value: T | undefined): T | undefined =>
  program.getOptionValueSource(flag) === 'cli' ? undefined : value;
// Flags given win over the preset (presets.ts): the preset fills in only what was left out.
const { settings: fromPreset, overridden: presetOverrides } = applyPreset(
  preset,
  {
    labels: positive('labels', o.labels),
    workers: positive('workers', o.workers),
    labelCapacity: positive('label-capacity', o.labelCapacity),
    slots: positive('slots', o.slots),
    producers: positive('producers', o.producers),
    requests: positive('requests', o.requests),
    modelSizeMb: positive('model-size-mb', o.modelSizeMb, false),
  },
  given,
);
const labels = fromScenario('labels', scen?.traffic.labels) ?? fromPreset.labels;
const workers = fromScenario('workers', scen?.workers) ?? fromPreset.workers;
const labelCapacity = fromScenario('labelCapacity', scen?.labelCapacity) ?? fromPreset.labelCapacity;
const slots = fromScenario('slots', scen?.slots) ?? fromPreset.slots;
const producers = fromScenario('producers', scen?.traffic.producers) ?? fromPreset.producers;
const requests = fromScenario('requests', scen?.traffic.requests) ?? fromPreset.requests;
const modelSizeMb = fromPreset.modelSizeMb;
const modelSizesMb = o.modelSizesMb?.split(',').map((v) => positive('model-sizes-mb', v.trim(), false));
if (modelSizesMb?.some((v) => v === 0)) program.error('--model-sizes-mb sizes must be > 0');
const MIB = 1024 * 1024;
const memoryBudgetMb =
  o.memoryBudgetMb === undefined ? undefined : positive('memory-budget-mb', o.memoryBudgetMb, false);
// A budget below the largest model would leave that label unservable (every task rejected).
const largestMb = Math.max(...(modelSizesMb ?? [modelSizeMb]));
if (memoryBudgetMb !== undefined && memoryBudgetMb < largestMb)
  program.error(
    `--memory-budget-mb must be at least the largest model (${largestMb} MB), got ${memoryBudgetMb}`,
  );
const memoryBudgetBytes = memoryBudgetMb === undefined ? undefined : Math.floor(memoryBudgetMb * MIB);
/** Footprint of model `label-i` as generated (the simulator's picture; workers report their own). */
const footprintBytes = (n: number): Record<string, number> => {
  const sizes = modelSizesMb ?? [modelSizeMb];
  const out: Record<string, number> = {};
  for (let i = 1; i <= n; i++) out[`label-${i}`] = Math.round(sizes[(i - 1) % sizes.length]! * MIB);
  return out;
};
let labelDist: LabelDistribution = fromScenario('labelDist', scen?.traffic.labelDist) ?? { kind: 'uniform' };
if (!scen || program.getOptionValueSource('labelDist') === 'cli') {
  try {
    labelDist = parseLabelDistribution(o.labelDist);
  } catch (err) {
    program.error((err as Error).message);
  }
}
const arrival = fromScenario('arrival', scen?.traffic.arrival) ?? o.arrival;

const modelRepository = resolve(
  o.models,
  modelSizesMb ? `sizes-${modelSizesMb.join('-')}mb` : `${modelSizeMb}mb`,
);
if (!o.dispatcherUrl) {
  progress.phase('generating models');
  console.log(
    `models: ${labels} x ${modelSizesMb ? `${modelSizesMb.join(' / ')} (cycled)` : modelSizeMb} MB in ${modelRepository}`,
  );
  await generateDemoModels({
    dir: modelRepository,
    count: labels,
    sizeMb: modelSizeMb,
    ...(modelSizesMb ? { sizesMb: modelSizesMb } : {}),
  });
}

// Calibrate: the measured load time sets the preset's waits and the simulator's load model
// (`--quick` skips it: fixed waits, and the simulator takes each run's own load times).
let loadS: number | undefined;
if (!o.dispatcherUrl && !preset?.fixedWaitsS) {
  progress.phase('calibrating load time (a stack of its own)');
  loadS =
    (await measureLoadTime({ modelRepository, labels, workers, logDir: calibrationLogDir(o.logDir) })) / 1000;
}
let waitAvgS = positive('wait-avg', o.waitAvg, false);
let waitStddevS = positive('wait-stddev', o.waitStddev, false);
let waitOverrides: PresetOverride[] = [];
if (preset) {
  try {
    ({
      waitAvgS,
      waitStddevS,
      overridden: waitOverrides,
    } = presetWaits(preset, loadS, { waitAvgS, waitStddevS }, (key) =>
      given(key === 'waitAvgS' ? 'waitAvg' : 'waitStddev'),
    ));
  } catch (err) {
    program.error((err as Error).message);
  }
  console.log(formatOverrides(preset, [...presetOverrides, ...waitOverrides]));
}
// A scenario keeps its load time / mean arrival interval: rate = ratio / the load time measured here.
let rate = positive('rate', o.rate, false);
let scenarioRatio: number | undefined;
if (scen && scen.traffic.arrival === 'open') {
  scenarioRatio = loadToIntervalRatio(scen);
  if (program.getOptionValueSource('rate') !== 'cli') {
    if (loadS === undefined) program.error('--scenario needs a stack started by the benchmark, or --rate');
    rate = scaledRate(scen, loadS);
  }
}
const interval = arrival === 'open' ? 1 / Math.max(rate, 1e-9) : meanArrivalIntervalS(waitAvgS, producers);
if (loadS !== undefined) {
  console.log(
    `measured load time in a stack ${(loadS * 1000).toFixed(1)} ms; ` +
      (arrival === 'closed'
        ? `waits ${waitAvgS.toFixed(3)} +/- ${waitStddevS.toFixed(3)} s; `
        : `rate ${rate.toFixed(1)}/s; `) +
      `load / mean arrival interval = ${(loadS / interval).toFixed(3)}` +
      (preset
        ? ` (original: ${(0.45 / meanArrivalIntervalS(preset.originalWaitAvgS, producers)).toFixed(3)})`
        : '') +
      (scen
        ? `; scenario ${scen.name}: ${scen.description}; its ratio ${fmtRatio(scenarioRatio)}, rate here ${rate.toFixed(1)}/s`
        : ''),
  );
}

const traffic: TrafficOptions = {
  requests,
  producers,
  labels,
  labelDist,
  arrival,
  waitAvgS,
  waitStddevS,
  rate,
  seed: positive('seed', o.seed),
};
const asyncFraction = Number(o.asyncFraction);
if (!Number.isFinite(asyncFraction) || asyncFraction < 0 || asyncFraction > 1)
  program.error(`--async-fraction must be a number from 0 to 1, got "${o.asyncFraction}"`);
const policies = compare ? [...POLICIES] : [o.randomDispatch ? 'random' : o.policy];

// --quick starts every policy's stack at once (a stack start is most of a short run), and only
// then runs the policies one after another, so no start competes with a measured run.
const stacks = new Map<string, Stack>();
if (o.quick && !o.dispatcherUrl) {
  progress.phase(`starting ${policies.length} stacks at once`);
  const started = await Promise.allSettled(
    policies.map((policy) =>
      startStack({
        modelRepository,
        workers,
        labelCapacity,
        slots,
        memoryBudgetBytes,
        policy,
        logDir: o.logDir,
        runId: `${policy}-${Date.now()}`,
        logLevel: 'info',
      }),
    ),
  );
  const failure = started.find((r) => r.status === 'rejected');
  for (const [i, r] of started.entries()) if (r.status === 'fulfilled') stacks.set(policies[i]!, r.value);
  if (failure) {
    await Promise.all([...stacks.values()].map((st) => st.close()));
    progress.stop();
    throw failure.reason;
  }
}

const results: { live: RunResult; simulated: SimulationResult | undefined }[] = [];
for (const policy of policies) {
  console.log(`\n== ${policy} ==`);
  const live = await runBenchmark({
    traffic,
    policy,
    workers,
    labelCapacity,
    slots,
    memoryBudgetBytes,
    modelRepository,
    dispatcherUrl: o.dispatcherUrl,
    logFile: o.logFile,
    logDir: o.logDir,
    asyncFraction,
    ...(stacks.has(policy) ? { stack: Promise.resolve(stacks.get(policy)!) } : {}),
    onPhase: (phase) =>
      progress.phase(`${policy}: ${phase}`, phase === 'sending requests' ? requests : undefined),
    onProgress: (out) => progress.requestDone(out.status !== 200),
  });
  progress.phase(`${policy}: simulating the same traffic`);
  const loadMs = live.meanLoadMs ?? (loadS ?? 0) * 1000;
  const simulated = simulate({
    traffic,
    policy,
    workers,
    labelCapacity,
    slots,
    // Per label when sizes differ, so the prediction sees what this run's loads cost.
    loadMs: modelSizesMb && Object.keys(live.loadMsByLabel).length > 0 ? live.loadMsByLabel : loadMs,
    runMs: live.meanRunMs ?? 2,
    ...(memoryBudgetBytes ? { memoryBudgetBytes, footprintBytes: footprintBytes(traffic.labels) } : {}),
  });
  console.log(formatSummary(live, simulated));
  results.push({ live, simulated });
}
if (results.length > 1) {
  console.log(`\n${formatComparison(results)}`);
  const rank = (misses: (r: (typeof results)[number]) => number): string =>
    [...results]
      .sort((a, b) => misses(a) - misses(b))
      .map((r) => r.live.policy)
      .join(' < ');
  const live = rank((r) => r.live.labelMisses.log ?? r.live.labelMisses.metrics);
  const sim = rank((r) => r.simulated?.labelMisses ?? Infinity);
  console.log(
    `\npolicies by misses, live: ${live}; simulator: ${sim} (${live === sim ? 'same ranking' : 'DIFFERENT ranking'})`,
  );
}

if (o.out) {
  const out = resolve(o.out);
  await mkdir(dirname(out), { recursive: true });
  const command = `npm run benchmark -- ${process.argv.slice(2).join(' ')}`;
  await writeFile(
    out,
    `${JSON.stringify({ command, date: new Date().toISOString(), preset: preset?.name ?? null, flagsOverPreset: [...presetOverrides, ...waitOverrides], scenario: scen?.name ?? null, modelSizesMb: modelSizesMb ?? null, memoryBudgetMb: memoryBudgetMb ?? null, measuredLoadMs: loadS !== undefined ? loadS * 1000 : null, loadToIntervalRatio: loadS !== undefined ? loadS / interval : null, traffic, workers, labelCapacity, slots, modelSizeMb, results }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
}
progress.stop();

function fmtRatio(n: number | undefined): string {
  return n === undefined ? 'n/a' : n.toFixed(3);
}
