#!/usr/bin/env node
import { createServiceLogger, exitOnConfigError } from '@smart-routing/service-kit';
import { Command } from 'commander';
import { loadWorkerConfig, type WorkerConfig } from './config.js';
import { loadHandlerPlugins } from './handler-plugins.js';
import { startWorker } from './worker.js';

/**
 * `smart-routing-worker`: settings from the environment, flags override. SIGTERM/SIGINT: drain
 * (heartbeat draining, finish in-flight tasks), close (socket, then the model server), exit 0.
 * A second signal skips the drain.
 */
const program = new Command()
  .name('smart-routing-worker')
  .description(
    'smart-routing worker agent: runs tasks from the dispatcher on a Triton-compatible model server',
  )
  .option('--dispatcher-url <url>', 'dispatcher base URL (env DISPATCHER_URL, default ws://127.0.0.1:8080)')
  .option(
    '--dispatcher-urls <urls>',
    'comma-separated base URLs of several dispatcher replicas; replaces --dispatcher-url (env DISPATCHER_URLS)',
  )
  .option(
    '--dispatcher-resolve-ms <ms>',
    'resolve dispatcher host names again this often, 0 = only on reconnect (env DISPATCHER_RESOLVE_MS, default 5000)',
  )
  .option(
    '--pending-results-max <n>',
    'results kept while no dispatcher replica leads (env PENDING_RESULTS_MAX, default 1000)',
  )
  .option(
    '--pending-results-bytes <n>',
    'bytes of those results kept, oldest dropped first (env PENDING_RESULTS_BYTES, default 67108864)',
  )
  .option(
    '--recent-results-ms <ms>',
    'keep sent results this long to send again to a new leader, 0 = none (env RECENT_RESULTS_MS, default 10000)',
  )
  .option(
    '--recent-results-max <n>',
    'most sent results kept to send again to a new leader (env RECENT_RESULTS_MAX, default 256)',
  )
  .option(
    '--recent-results-bytes <n>',
    'most bytes of sent results kept to send again to a new leader (env RECENT_RESULTS_BYTES, default 4194304)',
  )
  .option('--worker-id <id>', 'worker id (env WORKER_ID, default random)')
  .option('--max-labels <n>', 'labels held at once (env WORKER_MAX_LABELS, default 2)')
  .option('--slots <n>', 'tasks run at once (env WORKER_SLOTS, default 1)')
  .option(
    '--memory-budget-bytes <n>',
    'memory the models may take, bytes; 0 = only --max-labels limits (env WORKER_MEMORY_BUDGET_BYTES, default 0)',
  )
  .option(
    '--triton-url <url>',
    'Triton URL, or "none" (env TRITON_URL, default: start the embedded model server)',
  )
  .option(
    '--triton-protocol <http|grpc>',
    'how inferences reach the model server (env TRITON_PROTOCOL, default http)',
  )
  .option(
    '--triton-grpc-url <host:port>',
    "Triton's gRPC endpoint (env TRITON_GRPC_URL, default localhost:8001)",
  )
  .option('--model-repository <dir>', 'model repository (env MODEL_REPOSITORY, default ./models)')
  .option(
    '--worker-token <token>',
    'bearer token for the dispatcher (env WORKER_TOKEN, default none; prefer the env: flags show in ps)',
  )
  .option(
    '--model-recheck-ms <ms>',
    'how often a loaded model is re-checked for changes in the repository; 0 = every task (env WORKER_MODEL_RECHECK_MS, default 1000)',
  )
  .option(
    '--log-collector-url <url>',
    'ship logs to this log collector (env LOG_COLLECTOR_URL, default none)',
  )
  .option(
    '--handlers <modules>',
    'comma-separated task handler modules to load (env WORKER_HANDLERS, default none)',
  )
  .option('--log-level <level>', 'log level (env LOG_LEVEL, default info)')
  .parse();

const flags = program.opts<Partial<Record<keyof WorkerConfig, string>>>();

const config = exitOnConfigError('smart-routing-worker', () => loadWorkerConfig(process.env, flags));

// stderr always; the log collector too when LOG_COLLECTOR_URL is set.
const service = createServiceLogger({
  service: 'worker',
  level: config.logLevel,
  collectorUrl: config.logCollectorUrl,
  base: { worker_id: config.workerId },
});
const logger = service.logger;

// Signal handlers go in before the start: 'worker_started' is logged before startWorker resolves,
// and a SIGTERM right after it must drain, not kill the process (and orphan its model server).
let shutdown: ((signal: NodeJS.Signals) => void) | undefined;
let pendingSignal: NodeJS.Signals | undefined;
const onSignal = (signal: NodeJS.Signals): void => {
  if (shutdown) return shutdown(signal);
  if (pendingSignal) process.exit(1); // a second signal while starting: give up at once
  pendingSignal = signal;
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

try {
  const taskHandlers = config.handlers ? await loadHandlerPlugins(config.handlers) : [];
  if (taskHandlers.length > 0)
    logger.info(
      {
        event: 'worker_handlers_loaded',
        modules: config.handlers,
        task_types: taskHandlers.map((h) => h.taskType),
      },
      'task handler modules loaded',
    );
  const worker = await startWorker({
    dispatcherUrls: config.dispatcherUrls,
    resolveMs: config.dispatcherResolveMs,
    pendingResultsMax: config.pendingResultsMax,
    pendingResultsBytes: config.pendingResultsBytes,
    recentResultsMs: config.recentResultsMs,
    recentResultsMax: config.recentResultsMax,
    recentResultsBytes: config.recentResultsBytes,
    workerId: config.workerId,
    maxLabels: config.maxLabels,
    slots: config.slots,
    memoryBudgetBytes: config.memoryBudgetBytes,
    tritonUrl: config.tritonUrl,
    tritonProtocol: config.tritonProtocol,
    tritonGrpcUrl: config.tritonGrpcUrl,
    modelRepository: config.modelRepository,
    modelRecheckMs: config.modelRecheckMs,
    workerToken: config.workerToken,
    taskHandlers,
    logger,
  });

  let signals = 0;
  shutdown = (signal: NodeJS.Signals) => {
    signals++;
    logger.info({ event: 'worker_signal', signal }, signals === 1 ? 'draining, then exiting' : 'closing now');
    const steps = signals === 1 ? worker.drain().then(() => worker.close()) : worker.close();
    steps
      .then(() => exit(0))
      .catch((err: unknown) => {
        logger.error({ event: 'worker_shutdown_failed', message: (err as Error).message }, 'shutdown failed');
        exit(1);
      });
  };
  if (pendingSignal) shutdown(pendingSignal);
} catch (err) {
  logger.fatal({ event: 'worker_start_failed', message: (err as Error).message }, 'worker failed to start');
  exit(1);
}

/** Exits once the logs are written and shipped (or after 3 s). */
function exit(code: number): void {
  setTimeout(() => process.exit(code), 3000).unref();
  void service.close().finally(() => process.exit(code));
}
