#!/usr/bin/env node
/**
 * `npm run benchmark:infer`: what a producer pays for the tensor path, against the model itself.
 * One run, the same tensors and the same concurrency for every path (see infer-paths.ts):
 * (a) onnxruntime-node in this process, (b) the embedded model server directly (binary HTTP),
 * (c) the dispatcher's /run-task infer (JSON), (d) the dispatcher's KServe v2 HTTP front (binary),
 * (e) its KServe v2 gRPC front. Cases: the image model (1x3x224x224), a large output (40x6625),
 * dynamic batching at --batch-concurrency against (a) one request at a time, and one 1x3x320x320
 * request through every path. A path that is not there is reported "unavailable: <reason>".
 *
 * --front-url / --front-grpc point (d) and (e) elsewhere; `embedded` means the model server of (b),
 * which checks these clients against a server that already speaks the protocol.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  DEFAULT_SESSION_OPTIONS,
  startEmbeddedModelServer,
  type EmbeddedModelServer,
} from '@smart-routing/worker';
import { Command, InvalidArgumentError } from 'commander';
import { request } from 'undici';
import {
  checkTargets,
  formatCase,
  runCase,
  type CasePath,
  type CaseResult,
  type MeasureOptions,
} from './infer-bench.js';
import { modelFile, writeInferBenchModels, type InferBenchModel } from './infer-bench-models.js';
import { benchTensor, grpcPath, ortPath, runTaskPath, v2HttpPath } from './infer-paths.js';
import { childPids, processCpuMs } from './cpu.js';
import { freePort, startStack, type Stack } from './stack.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer.');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds.');
  return n;
}

const CASES = ['image', 'large', 'batching', 'image-320'];

const program = new Command('benchmark:infer')
  .option('--concurrency <n>', 'concurrent callers per path', positiveInt, 4)
  .option('--requests <n>', 'measured requests per path', positiveInt, 200)
  .option('--duration <s>', 'measure each path for this many seconds instead of --requests', seconds)
  .option('--warmup <n>', 'requests per path before measuring', count, 10)
  .option('--batch-concurrency <n>', 'concurrent callers of the dynamic batching case', positiveInt, 16)
  .option('--workers <n>', 'worker processes of the stack', positiveInt, 1)
  .option('--cases <list>', `comma-separated cases (${CASES.join(',')})`, CASES.join(','))
  .option('--front-url <url>', "base URL for (d) instead of the dispatcher's ('embedded': the server of (b))")
  .option(
    '--front-grpc <host:port>',
    "address for (e) instead of the dispatcher's GRPC_PORT ('embedded': (b)'s)",
  )
  .option('--out <file>', 'write the results as JSON')
  .parse();
const o = program.opts<{
  concurrency: number;
  requests: number;
  duration?: number;
  warmup: number;
  batchConcurrency: number;
  workers: number;
  cases: string;
  frontUrl?: string;
  frontGrpc?: string;
  out?: string;
}>();

const cases = o.cases.split(',').map((c) => c.trim());
for (const c of cases)
  if (!CASES.includes(c)) program.error(`error: unknown case '${c}' (cases: ${CASES.join(', ')})`);
const host = '127.0.0.1';

// Ctrl-C: exit, and the stack's exit hook stops the services it started (the model server of (b)
// exits with its parent).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const repo = await mkdtemp(join(tmpdir(), 'sr-infer-bench-'));
const models = await writeInferBenchModels(repo);
const modelGrpcPort = await freePort(host);
const dispatcherGrpcPort = await freePort(host);

let server: EmbeddedModelServer | undefined;
let stack: Stack | undefined;
const results: CaseResult[] = [];
try {
  server = await startEmbeddedModelServer({
    repository: repo,
    env: { ...process.env, LOG_LEVEL: 'warn', GRPC_PORT: String(modelGrpcPort) },
  });
  const modelServerUrl = server.url;
  // The embedded server is in explicit model-control mode: load what (b) uses.
  for (const m of Object.values(models) as InferBenchModel[]) {
    const res = await request(`${modelServerUrl}/v2/repository/models/${m.name}/load`, { method: 'POST' });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`loading ${m.name} on the model server: ${text}`);
  }
  stack = await startStack({
    modelRepository: repo,
    workers: o.workers,
    slots: Math.max(o.concurrency, o.batchConcurrency),
    labelCapacity: Object.keys(models).length,
    logLevel: 'warn',
    logDir: join(repo, 'logs'),
    // The body cap of /run-task must fit a JSON image; GRPC_PORT is where the v2 gRPC front listens.
    dispatcherEnv: { MAX_BODY_BYTES: String(256 * 1024 * 1024), GRPC_PORT: String(dispatcherGrpcPort) },
  });
  const frontUrl = o.frontUrl === 'embedded' ? modelServerUrl : (o.frontUrl ?? stack.dispatcherUrl);
  const frontGrpc =
    o.frontGrpc === 'embedded'
      ? `${host}:${modelGrpcPort}`
      : (o.frontGrpc ?? `${host}:${dispatcherGrpcPort}`);
  const dName = o.frontUrl ? `v2 HTTP client -> ${frontUrl}` : 'dispatcher v2 HTTP front (binary)';
  const eName = o.frontGrpc ? `v2 gRPC client -> ${frontGrpc}` : 'dispatcher v2 gRPC front';

  // CPU time per process, to say where an inference's time goes: this process (the clients, and
  // (a)'s ORT), the model server of (b), the dispatcher, the worker and the worker's own model server.
  const workerPid = stack.pids.workers[0];
  const workerModelServer = workerPid ? (await childPids(workerPid))[0] : undefined;
  const pids: Record<string, number | undefined> = {
    'model server (b)': server.pid,
    dispatcher: stack.pids.dispatcher,
    worker: workerPid,
    "worker's model server": workerModelServer,
  };
  const cpu = async (): Promise<Record<string, number>> => {
    const own = process.cpuUsage();
    const seen: Record<string, number> = { benchmark: (own.user + own.system) / 1000 };
    for (const [name, pid] of Object.entries(pids)) {
      if (pid) seen[name] = await processCpuMs(pid).catch(() => 0);
    }
    return seen;
  };
  const measured = (concurrency: number): MeasureOptions => {
    const m: MeasureOptions = { concurrency, requests: o.requests, warmup: o.warmup, cpu };
    if (o.duration !== undefined) m.durationMs = o.duration * 1000;
    return m;
  };
  /** The five paths on `model`, each with `options`. */
  const allPaths = (model: InferBenchModel, options: MeasureOptions): CasePath[] => {
    const input = benchTensor(model.input.shape);
    const c = options.concurrency;
    const d = stack!.dispatcherUrl;
    return [
      {
        id: 'a',
        name: 'onnxruntime-node in process',
        options,
        // The model server's own session options, so (a) runs the model as (b) to (e) do.
        open: () => ortPath(modelFile(repo, model.name), model, input, { ...DEFAULT_SESSION_OPTIONS }),
      },
      {
        id: 'b',
        name: 'embedded model server (binary HTTP)',
        options,
        open: async () => v2HttpPath(modelServerUrl, model, input, c),
      },
      {
        id: 'c',
        name: 'dispatcher /run-task infer (JSON)',
        options,
        open: async () => runTaskPath(d, model, input, c),
      },
      { id: 'd', name: dName, options, open: async () => v2HttpPath(frontUrl, model, input, c) },
      { id: 'e', name: eName, options, open: async () => grpcPath(frontGrpc, model, input) },
    ];
  };

  const header = `concurrency ${o.concurrency}, ${o.duration !== undefined ? `${o.duration} s` : `${o.requests} requests`} per path after ${o.warmup} warm-up, ${o.workers} worker(s)`;
  console.log(header);
  const print = (c: CaseResult): void => {
    results.push(c);
    console.log(formatCase(c).join('\n'));
  };
  if (cases.includes('image')) {
    const m = models.image;
    print(
      await runCase('image-224', `image model, input 1x3x224x224 FP32`, allPaths(m, measured(o.concurrency))),
    );
  }
  if (cases.includes('large')) {
    const m = models.large;
    print(
      await runCase(
        'large-output',
        'large output, input 1x3x48x320, output 1x40x6625 FP32',
        allPaths(m, measured(o.concurrency)),
      ),
    );
  }
  if (cases.includes('batching')) {
    const m = models.batched;
    const [baseline] = allPaths(models.image, measured(1));
    print(
      await runCase(
        'dynamic-batching',
        `dynamic batching (preferred 4,8; 2 ms queue delay), image model, c=${o.batchConcurrency}, against (a) one at a time`,
        [
          { ...baseline!, id: 'a1', name: 'onnxruntime-node in process, one at a time' },
          ...allPaths(m, measured(o.batchConcurrency)),
        ],
      ),
    );
  }
  if (cases.includes('image-320')) {
    const m = models.image320;
    const once: MeasureOptions = { concurrency: 1, requests: 1, warmup: 0 };
    print(await runCase('image-320', 'one 1x3x320x320 FP32 request through every path', allPaths(m, once)));
  }

  const targets = checkTargets(results);
  console.log("issue 10's targets:");
  for (const t of targets) console.log(`  ${t.verdict.padEnd(7)} ${t.target}: ${t.detail}`);

  if (o.out) {
    const out = resolve(o.out);
    await mkdir(dirname(out), { recursive: true });
    const command = `npm run benchmark:infer -- ${process.argv.slice(2).join(' ')}`.trim();
    const settings = { ...o, cases };
    await writeFile(
      out,
      `${JSON.stringify({ command, date: new Date().toISOString(), settings, cases: results, targets }, null, 2)}\n`,
    );
    console.log(`wrote ${out}`);
  }
} finally {
  await stack?.close();
  await server?.close();
  await rm(repo, { recursive: true, force: true });
}
