#!/usr/bin/env node
/**
 * `smart-routing-dispatcher`: runs the dispatcher until SIGTERM/SIGINT, then drains (a second
 * signal closes at once). Flags mirror the environment variables (README, Configuration) and win over them.
 */
import { createServiceLogger, exitOnConfigError } from '@smart-routing/service-kit';
import { Command, Option } from 'commander';
import { asyncTaskEnv } from './async-tasks/async-options.js';
import { loadConfig, type EnvVar } from './config.js';
import { startDispatcher } from './dispatcher.js';
import { openTaskStore } from './task-store/open-task-store.js';

const FLAGS: [flag: string, env: EnvVar, help: string][] = [
  ['--port <n>', 'PORT', 'TCP port (0 = any free port) [8080]'],
  ['--host <host>', 'HOST', 'interface to listen on [0.0.0.0]'],
  ['--policy <name>', 'ROUTING_POLICY', 'routing policy: random | idle-first | affinity [affinity]'],
  ['--random-dispatch <bool>', 'RANDOM_DISPATCH', 'true selects the random policy [false]'],
  ['--task-timeout-ms <ms>', 'TASK_TIMEOUT_MS', 'how long a producer waits for a task [60000]'],
  ['--max-queue <n>', 'MAX_QUEUE', 'most tasks waiting in all queues [1000]'],
  ['--max-queue-per-label <n>', 'MAX_QUEUE_PER_LABEL', 'most tasks waiting for one label [500]'],
  ['--max-attempts <n>', 'MAX_ATTEMPTS', 'tries per task across worker losses [3]'],
  ['--heartbeat-interval-ms <ms>', 'HEARTBEAT_INTERVAL_MS', 'heartbeat interval told to workers [1000]'],
  ['--worker-timeout-ms <ms>', 'WORKER_TIMEOUT_MS', 'drop a worker silent this long [5000]'],
  ['--shutdown-grace-ms <ms>', 'SHUTDOWN_GRACE_MS', 'how long a drain waits for tasks [10000]'],
  ['--worker-token <token>', 'WORKER_TOKEN', 'token workers must present [unset = no auth]'],
  ['--api-keys <keys>', 'API_KEYS', 'comma-separated producer API keys [unset = no auth]'],
  ['--uploader-url <url>', 'UPLOADER_URL', 'uploader base URL for POST /upload-model [unset]'],
  ['--model-repository <dir>', 'MODEL_REPOSITORY', 'check labels against this repository [unset]'],
  ['--grpc-port <n>', 'GRPC_PORT', 'KServe v2 gRPC front port, or off [8081; 0 when --port is 0]'],
  ['--max-infer-body-bytes <n>', 'MAX_INFER_BODY_BYTES', 'largest KServe v2 body [64 MiB - 64 KiB]'],
  ['--log-collector-url <url>', 'LOG_COLLECTOR_URL', 'log collector base URL [unset]'],
  ['--log-level <level>', 'LOG_LEVEL', 'fatal | error | warn | info | debug | trace | silent [info]'],
];

const program = new Command('smart-routing-dispatcher').description(
  'Label-affinity task dispatcher: producers POST /run-task, workers connect to /worker-listen.',
);
for (const [flag, env, help] of FLAGS) program.addOption(new Option(flag, `${help} (env ${env})`));
program.parse();
const flags = program.opts<Record<string, string | undefined>>();

const overrides: Partial<Record<EnvVar, string | undefined>> = {};
for (const [flag, env] of FLAGS) {
  const key = flag
    .slice(2)
    .split(' ')[0]!
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  overrides[env] = flags[key];
}

const config = exitOnConfigError('smart-routing-dispatcher', () => loadConfig(process.env, overrides));
// The async task settings (README, Asynchronous tasks); the store's own come with the config.
const storeSpec = config.taskStore;
const asyncTasks = {
  ...exitOnConfigError('smart-routing-dispatcher', () => asyncTaskEnv(process.env)),
  resultTtlS: config.resultTtlMs / 1000,
  maxResults: config.maxStoredResults,
};

// stderr always; the log collector too when LOG_COLLECTOR_URL is set.
const service = createServiceLogger({
  service: 'dispatcher',
  level: config.logLevel,
  collectorUrl: config.logCollectorUrl,
});
const logger = service.logger;

/** Exits once the logs are shipped (within the shipper's timeout) and stderr is flushed. */
const exit = (code: number): void => {
  void service.close().then(() => process.exit(code));
};

// Signal handlers go in before the start: the ready line ('dispatcher_listening') is logged before
// startDispatcher resolves, and a SIGTERM right after it must drain, not kill the process.
let started = false;
let pendingSignal: string | undefined;
const onSignal = (signal: string): void => {
  if (started) return stop(signal);
  if (pendingSignal) process.exit(1); // a second signal while starting: give up at once
  pendingSignal = signal;
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

const shipper = service.shipper;
const taskStore = await openTaskStore(storeSpec, { logger, keyPrefix: config.taskStoreKeyPrefix }).catch(
  (err: unknown) => {
    logger.fatal(
      { err, event: 'task_store_open_failed', store: storeSpec.kind },
      'could not open the task store',
    );
    exit(1);
    return new Promise<never>(() => {});
  },
);
const handle = await startDispatcher({
  ...config,
  logger,
  taskStore,
  asyncTasks,
  ...(shipper ? { logRecordsDropped: () => shipper.dropped() } : {}),
}).catch((err: unknown) => {
  logger.fatal({ err, event: 'dispatcher_start_failed' }, 'could not start the dispatcher');
  exit(1);
  return new Promise<never>(() => {});
});

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) {
    logger.warn({ event: 'dispatcher_forced_close', signal }, 'second signal: closing now');
    void handle.close();
    return;
  }
  stopping = true;
  logger.info({ event: 'dispatcher_stopping', signal }, `${signal}: draining`);
  handle
    .drain()
    .then(() => taskStore.close())
    .then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err, event: 'dispatcher_drain_failed' }, 'drain failed');
        exit(1);
      },
    );
};
started = true;
if (pendingSignal) stop(pendingSignal);
