#!/usr/bin/env node
/**
 * `npm run benchmark:throughput`: how many tasks per second one dispatcher routes. Workers run
 * the label-free `echo` task with no model server (TRITON_URL=none), so the dispatcher is what is
 * measured. In the same run, the same client drives a bare Express echo route in its own process,
 * and the ratio of the two is printed (absolute numbers drift on this machine; the ratio less so).
 * Both targets stay up for the whole run and are measured in alternating order, round after round
 * (d b, b d, d b, ...), so a change in the machine's load hits both alike; the median round's ratio
 * is the result, every round is printed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { processCpuMs } from './cpu.js';
import { loadLoop, type LoadResult } from './load-loop.js';
import { startStack } from './stack.js';

const o = new Command('benchmark:throughput')
  .option('--workers <n>', 'worker processes', '4')
  .option('--slots <n>', 'task slots per worker', '16')
  .option('--concurrency <n>', 'concurrent producers', '64')
  .option('--requests <n>', 'measured requests per target and round', '20000')
  .option('--warmup <n>', 'requests before measuring, per target (first round only)', '2000')
  .option('--rounds <n>', 'rounds, each measuring both targets (alternating which goes first)', '5')
  .option('--policy <name>', 'routing policy', 'affinity')
  .option('--out <file>', 'write the results as JSON')
  .parse()
  .opts<{
    workers: string;
    slots: string;
    concurrency: string;
    requests: string;
    warmup: string;
    rounds: string;
    policy: string;
    out?: string;
  }>();

const concurrency = Number(o.concurrency);
const total = Number(o.requests);
const warmup = Number(o.warmup);
const rounds = Math.max(1, Number(o.rounds));
const body = (i: number): string =>
  JSON.stringify({
    task_id: `tp-${process.pid}-${i}-${Math.random()}`,
    task_type: 'echo',
    label: 'echo',
    parameters_json: '{"n":1}',
  });

type Measured = LoadResult & { cpuMsPerTask: number | null };

async function measure(url: string, pid: number | undefined, warm: number): Promise<Measured> {
  if (warm > 0) await loadLoop({ url, concurrency, total: warm, body });
  const cpu0 = pid ? await processCpuMs(pid) : 0;
  const result = await loadLoop({ url, concurrency, total, body });
  const cpu1 = pid ? await processCpuMs(pid) : 0;
  return { ...result, cpuMsPerTask: pid ? (cpu1 - cpu0) / total : null };
}

/** One round: both targets, in the order they ran. */
interface Round {
  readonly order: 'dispatcher first' | 'bare first';
  readonly dispatcher: Measured;
  readonly baseline: Measured;
  readonly ratio: number;
}

const repo = await mkdtemp(join(tmpdir(), 'sr-throughput-'));
const stack = await startStack({
  modelRepository: repo,
  dispatcherChecksRepository: false,
  workers: Number(o.workers),
  slots: Number(o.slots),
  labelCapacity: 2,
  policy: o.policy,
  tritonUrl: 'none',
  logLevel: 'warn',
  logDir: join(repo, 'logs'),
});
const bare = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'bare-echo-server.js')], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const results: Round[] = [];
try {
  const [line] = (await once(createInterface({ input: bare.stdout }), 'line')) as [string];
  const bareUrl = (JSON.parse(line) as { url: string }).url;
  const runDispatcher = (warm: number) =>
    measure(`${stack.dispatcherUrl}/run-task`, stack.pids.dispatcher, warm);
  const runBare = (warm: number) => measure(`${bareUrl}/run-task`, bare.pid, warm);
  for (let r = 0; r < rounds; r++) {
    const warm = r === 0 ? warmup : 0;
    const dispatcherFirst = r % 2 === 0;
    let dispatcher: Measured;
    let baseline: Measured;
    if (dispatcherFirst) {
      dispatcher = await runDispatcher(warm);
      baseline = await runBare(warm);
    } else {
      baseline = await runBare(warm);
      dispatcher = await runDispatcher(warm);
    }
    const ratio = dispatcher.perSecond / baseline.perSecond;
    results.push({ order: dispatcherFirst ? 'dispatcher first' : 'bare first', dispatcher, baseline, ratio });
    process.stderr.write(`round ${r + 1}/${rounds}: ratio ${ratio.toFixed(2)}\n`);
  }
} finally {
  bare.kill('SIGTERM');
  await stack.close();
}

// The median round by ratio (the lower middle one for an even count): its rows are the headline.
const median = [...results].sort((a, b) => a.ratio - b.ratio)[Math.floor((results.length - 1) / 2)]!;
const row = (name: string, r: Measured): string =>
  `${name.padEnd(34)} ${r.perSecond.toFixed(0).padStart(8)} tasks/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms  cpu ${r.cpuMsPerTask === null ? 'n/a' : `${(r.cpuMsPerTask * 1000).toFixed(0)} us`}/task  failures ${r.failures}`;
console.log(
  `${total} requests per target and round, ${rounds} rounds alternating, ${concurrency} concurrent producers, ${o.workers} workers x ${o.slots} slots, policy ${o.policy}`,
);
results.forEach((r, i) => {
  console.log(`round ${i + 1} (${r.order}): ratio ${r.ratio.toFixed(2)}`);
  console.log(`  ${row('dispatcher -> ws -> workers (echo)', r.dispatcher)}`);
  console.log(`  ${row('bare Express echo route', r.baseline)}`);
});
console.log(
  `median ratio dispatcher / bare Express: ${median.ratio.toFixed(2)} (round ${results.indexOf(median) + 1}; all: ${results.map((r) => r.ratio.toFixed(2)).join(', ')})`,
);

if (o.out) {
  const out = resolve(o.out);
  await mkdir(dirname(out), { recursive: true });
  const command = `npm run benchmark:throughput -- ${process.argv.slice(2).join(' ')}`;
  await writeFile(
    out,
    `${JSON.stringify(
      {
        command,
        date: new Date().toISOString(),
        // The median round's figures, then every round.
        dispatcher: median.dispatcher,
        baseline: median.baseline,
        ratio: median.ratio,
        rounds: results,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out}`);
}
