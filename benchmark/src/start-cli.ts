#!/usr/bin/env node
/**
 * `npm start`: demo models (generated if missing), log collector, dispatcher, uploader and workers
 * on loopback, each in its own process.
 *
 *   start ──> ready line ──(SIGINT | SIGTERM | SIGHUP | parent gone)──> stop in order ──> exit 0
 *     │                  └─(a service exits)──> its last log lines ──> stop the rest ──> exit 1
 *     └─(a service fails to start)──> its last log lines ──> exit 1
 *
 * The launcher reads only its own settings (flags, or NUM_WORKERS, WORKER_MAX_LABELS, WORKER_SLOTS,
 * ROUTING_POLICY, RANDOM_DISPATCH, MODEL_REPOSITORY, LOG_LEVEL, LOG_KEEP_RUNS, API_KEYS, WORKER_TOKEN, WORKER_HANDLERS,
 * HF_ENDPOINT, HF_TOKEN, REDIS_URL); each service gets exactly its own environment.
 *
 * `--dispatchers N` (N > 1): N dispatcher replicas on one Redis, REDIS_URL's or a redis-server the
 * launcher starts (missing: an error naming the package, before anything starts).
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { generateDemoModels } from '@smart-routing/model-repo';
import { pruneRunLogs } from './log-retention.js';
import { RedisMissingError, redisServerBinary } from './redis-binary.js';
import { StackStartError, startStack, type Stack } from './stack.js';

function intArg(min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > 65535)
      throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return Number(value);
  };
}

/** An env default for a numeric flag, validated like the flag (a bad value is an error, not NaN). */
function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  try {
    return intArg(min)(raw);
  } catch {
    console.error(`smart-routing-start: invalid ${name}: must be an integer >= ${min}`);
    process.exit(2);
  }
}

const program = new Command('smart-routing-start')
  .description(
    'Start a local smart-routing stack: log collector, dispatcher, uploader, workers with embedded model servers.',
  )
  // Not PORT: that is every service's own variable, and the launcher starts several services.
  .option('--port <n>', 'dispatcher port (0 = any free port)', intArg(0), 8080)
  .option(
    '--dispatchers <n>',
    'dispatcher replicas on one Redis (REDIS_URL, else a local redis-server); replica i on --port + 10*i',
    intArg(1),
    1,
  )
  .option(
    '--grpc-port <n>',
    "the dispatcher's KServe v2 gRPC port (0 = any free port)",
    intArg(0),
    envInt('GRPC_PORT', 8081, 0),
  )
  .option('--collector-port <n>', 'log collector port', intArg(0), envInt('LOG_COLLECTOR_PORT', 8001, 0))
  .option('--uploader-port <n>', 'uploader port', intArg(0), envInt('UPLOADER_PORT', 8002, 0))
  .option('--no-uploader', 'do not start the uploader')
  .option(
    '--host [address]',
    'let workers on other machines join: the dispatcher and the log collector listen on this address (needs WORKER_TOKEN)',
  )
  .option('--workers <n>', 'worker processes', intArg(1), envInt('NUM_WORKERS', 2, 1))
  .option('--label-capacity <n>', 'labels per worker', intArg(1), envInt('WORKER_MAX_LABELS', 2, 1))
  .option('--slots <n>', 'task slots per worker', intArg(1), envInt('WORKER_SLOTS', 1, 1))
  .option(
    '--policy <name>',
    'routing policy: affinity | idle-first | random',
    process.env.ROUTING_POLICY ?? 'affinity',
  )
  .option('--models <dir>', 'model repository', process.env.MODEL_REPOSITORY ?? './models')
  .option('--labels <n>', 'demo models to generate when missing', intArg(0), 5)
  .option('--triton-url <url>', "workers' TRITON_URL: unset = embedded model servers; 'none' = echo only")
  .option(
    '--handlers <modules>',
    "workers' WORKER_HANDLERS: comma-separated task handler modules (paths relative to here)",
    process.env.WORKER_HANDLERS,
  )
  .option('--log-dir <dir>', 'folder for the run logs', './logs')
  .option(
    '--keep-logs <n>',
    'run log folders kept in --log-dir, this run included; 0 = all (env LOG_KEEP_RUNS)',
    intArg(0),
    envInt('LOG_KEEP_RUNS', 10, 0),
  )
  .option('--log-level <level>', 'log level of the services', process.env.LOG_LEVEL ?? 'info')
  .parse();

const opts = program.opts<{
  port: number;
  dispatchers: number;
  grpcPort: number;
  collectorPort: number;
  uploaderPort: number;
  uploader: boolean;
  workers: number;
  labelCapacity: number;
  slots: number;
  policy: string;
  models: string;
  labels: number;
  tritonUrl?: string;
  handlers?: string;
  host?: string | true;
  logDir: string;
  keepLogs: number;
  logLevel: string;
}>();

// --host alone means every interface; remote workers must present a token they were given.
const listenHost = opts.host === true ? '0.0.0.0' : opts.host;
if (listenHost && !process.env.WORKER_TOKEN) {
  console.error(
    'smart-routing-start: --host needs WORKER_TOKEN, the token workers on other machines present',
  );
  process.exit(2);
}

const redisUrl = process.env.REDIS_URL || undefined;
if (opts.dispatchers > 1 && !redisUrl) {
  try {
    redisServerBinary();
  } catch (err) {
    if (!(err instanceof RedisMissingError)) throw err;
    console.error(`smart-routing-start: ${err.message}`);
    process.exit(1);
  }
}

const modelRepository = resolve(opts.models);
console.log(`model repository: ${modelRepository}`);
const made = await generateDemoModels({ dir: modelRepository, count: opts.labels });
console.log(`demo models ready: ${made.length > 0 ? made.join(', ') : '(none)'}`);

const policy = process.env.RANDOM_DISPATCH === 'true' ? 'random' : opts.policy;
const apiKeys = (process.env.API_KEYS ?? '')
  .split(',')
  .map((k) => k.trim())
  .filter((k) => k.length > 0);
const hubEnv: Record<string, string> = {};
for (const name of ['HF_ENDPOINT', 'HF_TOKEN']) {
  const value = process.env[name];
  if (value) hubEnv[name] = value;
}

// Workers resolve relative module paths against their own working directory: hand them absolute ones.
const workerHandlers = opts.handlers
  ?.split(',')
  .map((m) => m.trim())
  .filter((m) => m.length > 0)
  .map((m) => (m.startsWith('.') ? resolve(m) : m))
  .join(',');

let stack: Stack | undefined;
let stopping = false;
let exitCode = 0;
const starting = new AbortController();
const stop = (why: string, code: number): void => {
  if (stopping) {
    // A second Ctrl-C: do not wait for the drain (the exit handler still signals every child).
    console.log(`${why}: stopping now`);
    process.exit(exitCode || 130);
  }
  stopping = true;
  exitCode = code;
  console.log(
    `\n${why}: stopping workers, ${opts.dispatchers > 1 ? 'dispatchers, uploader, redis-server' : 'dispatcher, uploader'}, log collector...`,
  );
  // Still starting: startStack stops what it started, then rejects (handled below).
  if (!stack) return starting.abort();
  stack.close().then(
    () => {
      console.log('stopped.');
      process.exit(exitCode);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
// Installed before the start, so a signal during start-up stops what has started.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal, 0));
// npm forwards SIGINT and SIGTERM, not SIGHUP: if npm (our parent) goes away, stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop('parent process exited', 0);
}, 1000).unref();

try {
  stack = await startStack({
    modelRepository,
    workers: opts.workers,
    labelCapacity: opts.labelCapacity,
    slots: opts.slots,
    policy,
    dispatcherPort: opts.port,
    dispatchers: opts.dispatchers,
    ...(redisUrl && opts.dispatchers > 1 ? { redisUrl } : {}),
    // As the dispatcher's own rule: with --port 0 (tests, side-by-side stacks) gRPC takes a free port too.
    dispatcherGrpcPort:
      opts.port === 0 && program.getOptionValueSource('grpcPort') === 'default' ? 0 : opts.grpcPort,
    collectorPort: opts.collectorPort,
    uploader: opts.uploader,
    uploaderPort: opts.uploaderPort,
    apiKeys,
    // Accepted async tasks survive a restart of `npm start` (TASK_STORE overrides).
    taskStore: process.env.TASK_STORE || 'sqlite:./data/tasks.sqlite',
    ...(process.env.WORKER_TOKEN ? { workerToken: process.env.WORKER_TOKEN } : {}),
    ...(opts.tritonUrl ? { tritonUrl: opts.tritonUrl } : {}),
    ...(listenHost ? { listenHost } : {}),
    uploaderEnv: hubEnv,
    ...(workerHandlers ? { workerEnv: { WORKER_HANDLERS: workerHandlers } } : {}),
    logDir: opts.logDir,
    output: 'files',
    logLevel: opts.logLevel,
    signal: starting.signal,
  });
} catch (err) {
  if (stopping) {
    console.log('stopped.');
    process.exit(exitCode);
  }
  if (!(err instanceof StackStartError)) throw err;
  console.error(`\nsmart-routing-start: ${err.message}`);
  process.exit(1);
}
if (stopping) {
  await stack.close();
  console.log('stopped.');
  process.exit(exitCode);
}

const s = stack;
const auth = apiKeys.length > 0 ? ` -H 'authorization: Bearer <one of API_KEYS>'` : '';
const example = `curl -s ${s.dispatcherUrl}/run-task -H 'content-type: application/json'${auth} -d '{"task_id":"t1","task_type":"embed_texts","label":"label-1","parameters_json":"{\\"texts\\":[\\"hello world\\"]}"}'`;
/** `id url (role)` per replica; the role from its /ready once the dispatcher reports one. */
async function describeReplicas(): Promise<string> {
  const parts = await Promise.all(
    s.replicas.map(async (r) => {
      let role: string | undefined;
      try {
        const res = await fetch(`${r.url}/ready`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { replica?: { role?: unknown } };
        if (typeof body.replica?.role === 'string') role = body.replica.role;
      } catch {
        // an older dispatcher without /ready: the URL alone
      }
      return `${r.id} ${r.url}${role ? ` (${role})` : ''}`;
    }),
  );
  return parts.join(', ');
}
const dispatchersText =
  s.replicas.length > 1
    ? `${s.replicas.length} dispatchers ${await describeReplicas()} on ${s.redisUrl}`
    : `dispatcher ${s.dispatcherUrl}`;
console.log(
  `\nsmart-routing ready: ${dispatchersText} (policy ${policy}; KServe v2 at ${s.dispatcherUrl}/v2, gRPC ${s.dispatcherGrpcAddress ?? 'off'}), ${s.workerIds.length} workers, log collector ${s.collectorUrl} -> ${s.logFile} (each service's own log beside it)${s.uploaderUrl ? `, uploader ${s.uploaderUrl}` : ''}`,
);
console.log(
  `try:\n  ${example}\n  curl -s ${s.dispatcherUrl}/labels${auth}\n  curl -s ${s.dispatcherUrl}/metrics | grep smart_routing_label\nCtrl-C to stop.`,
);

if (listenHost) {
  const port = new URL(s.dispatcherUrl).port;
  console.log(
    `workers elsewhere: DISPATCHER_URL=http://<this machine's address>:${port} WORKER_TOKEN=<the same token> ` +
      `npx smart-routing-worker (listening on ${listenHost})`,
  );
}

// Log retention: this run's folder exists now, so it is among the ones kept.
pruneRunLogs(opts.logDir, opts.keepLogs).then(
  (removed) => {
    if (removed.length > 0)
      console.log(
        `removed ${removed.length} old run log folder(s) from ${opts.logDir} (--keep-logs ${opts.keepLogs})`,
      );
  },
  (err: unknown) => console.error(`smart-routing-start: could not prune old logs: ${(err as Error).message}`),
);

void s.failed.then((failure) => {
  if (stopping) return;
  const how = failure.signal ? `signal ${failure.signal}` : `code ${failure.code}`;
  console.error(
    `\nsmart-routing-start: ${failure.service} exited with ${how}; its last log lines:\n  ${failure.lastLines.join('\n  ')}`,
  );
  stop(`${failure.service} failed`, 1);
});
