#!/usr/bin/env node
/**
 * `npm run benchmark:throughput`: how many tasks per second one dispatcher routes. Workers run
 * the label-free `echo` task with no model server (TRITON_URL=none), so the dispatcher is what is
 * measured. In the same run, the same client drives a bare Express echo route in its own process,
 * and the ratio of the two is printed (absolute numbers drift on this machine; the ratio less so).
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
  .option('--requests <n>', 'measured requests per target', '20000')
  .option('--warmup <n>', 'requests before measuring', '2000')
  .option('--policy <name>', 'routing policy', 'affinity')
  .option('--out <file>', 'write the results as JSON')
  .parse()
  .opts<{
    workers: string;
    slots: string;
    concurrency: string;
    requests: string;
    warmup: string;
    policy: string;
    out?: string;
  }>();

const concurrency = Number(o.concurrency);
const total = Number(o.requests);
const warmup = Number(o.warmup);
const body = (i: number): string =>
  JSON.stringify({
    task_id: `tp-${process.pid}-${i}-${Math.random()}`,
    task_type: 'echo',
    label: 'echo',
    parameters_json: '{"n":1}',
  });

async function measure(
  url: string,
  pid: number | undefined,
): Promise<LoadResult & { cpuMsPerTask: number | null }> {
  await loadLoop({ url, concurrency, total: warmup, body });
  const cpu0 = pid ? await processCpuMs(pid) : 0;
  const result = await loadLoop({ url, concurrency, total, body });
  const cpu1 = pid ? await processCpuMs(pid) : 0;
  return { ...result, cpuMsPerTask: pid ? (cpu1 - cpu0) / total : null };
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
let dispatcher;
try {
  dispatcher = await measure(`${stack.dispatcherUrl}/run-task`, stack.pids.dispatcher);
} finally {
  await stack.close();
}

const bare = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'bare-echo-server.js')], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const [line] = (await once(createInterface({ input: bare.stdout }), 'line')) as [string];
const bareUrl = (JSON.parse(line) as { url: string }).url;
let baseline;
try {
  baseline = await measure(`${bareUrl}/run-task`, bare.pid);
} finally {
  bare.kill('SIGTERM');
}

const row = (name: string, r: LoadResult & { cpuMsPerTask: number | null }): string =>
  `${name.padEnd(34)} ${r.perSecond.toFixed(0).padStart(8)} tasks/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms  cpu ${r.cpuMsPerTask === null ? 'n/a' : `${(r.cpuMsPerTask * 1000).toFixed(0)} us`}/task  failures ${r.failures}`;
console.log(
  `${total} requests, ${concurrency} concurrent producers, ${o.workers} workers x ${o.slots} slots, policy ${o.policy}`,
);
console.log(row('dispatcher -> ws -> workers (echo)', dispatcher));
console.log(row('bare Express echo route', baseline));
console.log(`ratio dispatcher / bare Express: ${(dispatcher.perSecond / baseline.perSecond).toFixed(2)}`);

if (o.out) {
  const out = resolve(o.out);
  await mkdir(dirname(out), { recursive: true });
  const command = `npm run benchmark:throughput -- ${process.argv.slice(2).join(' ')}`;
  await writeFile(
    out,
    `${JSON.stringify({ command, date: new Date().toISOString(), dispatcher, baseline, ratio: dispatcher.perSecond / baseline.perSecond }, null, 2)}\n`,
  );
  console.log(`wrote ${out}`);
}
