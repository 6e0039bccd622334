import { createServer, type Server } from 'node:http';
import { listen, type ListeningServer } from '@smart-routing/service-kit';
import { checkWorkerTrust, resolveOptions, type DispatcherOptions, type ResolvedOptions } from './config.js';
import { installHttpEdges, isAnsweredSocket } from './http-edges.js';
import { answerClientError, createHttpApp } from './http-routes.js';
import { serviceLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { RepositoryLabels } from './repository-labels.js';
import { Router } from './routing/router.js';
import { createRunTaskHandler, isRunTaskRequest } from './run-task-route.js';
import { WorkerQuarantine } from './quarantine.js';
import { TaskTracker } from './task-tracker.js';
import { WorkerEndpoint } from './worker-endpoint.js';
import { createWorkerLink } from './worker-messages.js';

/** A running dispatcher. */
export interface DispatcherHandle {
  /** `http://host:port` (loopback shown as 127.0.0.1 when listening on every interface). */
  readonly url: string;
  readonly port: number;
  /** The validated options it runs with. */
  readonly options: ResolvedOptions;
  /** The routing core (read its picture; do not drive it from outside). */
  readonly router: Router;
  /**
   * Graceful shutdown, in this order: stop admitting (503 shutting_down), let queued and in-flight
   * tasks finish for up to `graceMs` [shutdownGraceMs], send Drain to the workers, answer what is
   * left with 503 shutting_down, close the worker sockets (1001), close the HTTP server.
   * Resolves when all of that is done. Safe to call twice; `close()` during a drain cuts the grace.
   */
  drain(graceMs?: number): Promise<void>;
  /** Shutdown without grace (the same order, nothing waited for). Safe to call twice. */
  close(): Promise<void>;
}

/** How long an overwrite upload waits for the workers holding the label to unload it. */
const RETIRE_TIMEOUT_MS = 10_000;

/**
 * Starts the dispatcher: one `http.Server` carrying the Express API and the worker WebSocket
 * endpoint, around one routing core.
 *
 *   producers ─HTTP─> run-task-route ─> TaskTracker ─> Router (pure) ─> decisions
 *             (rest: http-routes)  <─ task-answer ─┘ ^   │ worker-messages: RunTask / LabelOrder
 *   workers  ─WS──> worker-endpoint ─────────────────┘   v
 *                   (Hello, TaskResult, LabelEvent, Heartbeat)
 */
export async function startDispatcher(options: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const resolved = resolveOptions(options);
  checkWorkerTrust(resolved);
  const logger = serviceLogger(options.logger);
  const router = new Router({
    policy: resolved.policy,
    random: options.random ?? Math.random,
    maxQueue: resolved.maxQueue,
    maxQueuePerLabel: resolved.maxQueuePerLabel,
    failureBackoffMs: resolved.labelFailureBackoffMs,
  });
  const quarantine = new WorkerQuarantine({
    strikes: resolved.quarantineStrikes,
    windowMs: resolved.quarantineWindowMs,
    cooldownMs: resolved.quarantineMs,
    maxCooldownMs: resolved.quarantineMs * 10,
  });
  const metrics = createMetrics(
    {
      queueDepths: () => router.queueDepths(),
      get workerCount() {
        return router.workerCount;
      },
      get quarantinedCount() {
        return quarantine.size;
      },
    },
    { logRecordsDropped: options.logRecordsDropped },
  );
  const repository = resolved.modelRepository
    ? new RepositoryLabels(resolved.modelRepository, resolved.repositoryCacheMs)
    : undefined;
  let draining = false;
  const server: Server = createServer({
    // Node requires headersTimeout <= requestTimeout.
    headersTimeout: Math.min(resolved.headersTimeoutMs, resolved.requestTimeoutMs),
    requestTimeout: resolved.requestTimeoutMs,
    // Node checks both timeouts on this interval (default 30 s): a short timeout needs a short check.
    connectionsCheckingInterval: Math.max(
      10,
      Math.min(30_000, Math.floor(Math.min(resolved.headersTimeoutMs, resolved.requestTimeoutMs) / 4)),
    ),
  });
  installHttpEdges(server, { maxConnections: resolved.maxConnections });
  // The endpoint's events reach the tracker, created next; none fire before listen().
  const endpoint = new WorkerEndpoint(server, {
    options: resolved,
    logger,
    isAccepting: () => !draining,
    events: {
      joined: (info) => tracker.onWorkerJoined(info),
      left: (id, reason) => tracker.onWorkerLeft(id, reason),
      taskResult: (id, result) => tracker.onTaskResult(id, result),
      labelEvent: (id, event) => tracker.onLabelEvent(id, event),
      heartbeat: (id, beat) => tracker.onHeartbeat(id, beat),
    },
  });
  const tracker = new TaskTracker({
    router,
    options: resolved,
    metrics,
    logger,
    repository,
    workers: createWorkerLink((id, message) => endpoint.send(id, message)),
    quarantine,
  });
  const runTask = createRunTaskHandler({ options: resolved, tracker, logger });
  const app = createHttpApp({
    options: resolved,
    router,
    runTask,
    metrics,
    logger,
    repository,
    isDraining: () => draining,
    isQuarantined: (id) => quarantine.isQuarantined(id),
    retireLabel: (label) => tracker.retireLabel(label, RETIRE_TIMEOUT_MS),
  });
  // POST /run-task skips Express (the hot path); every other request goes to it.
  server.on('request', (req, res) => {
    if (isAnsweredSocket(req)) return void req.resume(); // over the connection cap: answered already
    if (isRunTaskRequest(req)) runTask(req, res);
    else app(req, res);
  });
  server.on('clientError', answerClientError);
  const ticker = setInterval(() => {
    try {
      tracker.tick();
    } catch (err) {
      logger.error({ err, event: 'tick_failed' }, 'routing tick failed');
    }
  }, resolved.tickIntervalMs).unref();

  let http: ListeningServer;
  try {
    http = await listen(server, { port: resolved.port, host: resolved.host, closeGraceMs: 1000 });
  } catch (err) {
    clearInterval(ticker);
    await endpoint.close();
    throw err;
  }
  const { url, port } = http;

  let shutdown: Promise<void> | undefined;
  let cutGrace: () => void = () => {};
  const graceCut = new Promise<void>((resolve) => (cutGrace = resolve));

  const drain = (graceMs: number = resolved.shutdownGraceMs): Promise<void> => {
    shutdown ??= (async () => {
      draining = true;
      tracker.stopAdmitting();
      logger.info({ event: 'dispatcher_draining', pending: tracker.size, grace_ms: graceMs }, 'draining');
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        tracker.whenIdle(),
        graceCut,
        new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, graceMs).unref())),
      ]);
      clearTimeout(graceTimer);
      endpoint.drainAll('dispatcher shutting down');
      tracker.failAll('shutting_down', 'the dispatcher shut down before the task finished');
      clearInterval(ticker);
      await endpoint.close();
      await http.close();
      logger.info({ event: 'dispatcher_closed' }, 'dispatcher closed');
    })();
    return shutdown;
  };

  logger.info(
    { event: 'dispatcher_listening', url, policy: resolved.policy },
    `dispatcher listening on ${url}`,
  );
  return {
    url,
    port,
    options: resolved,
    router,
    drain,
    close: () => {
      cutGrace();
      return drain(0);
    },
  };
}
