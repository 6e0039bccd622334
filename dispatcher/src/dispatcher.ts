import { createServer, type Server } from 'node:http';
import type { TaskResult } from '@smart-routing/proto';
import { listen, type ListeningServer } from '@smart-routing/service-kit';
import { resolveAsyncTaskOptions } from './async-tasks/async-options.js';
import { AsyncTasks } from './async-tasks/async-tasks.js';
import { timedStore } from './async-tasks/timed-store.js';
import {
  checkWorkerTrust,
  ConfigError,
  resolveOptions,
  type DispatcherOptions,
  type ResolvedOptions,
} from './config.js';
import { installHttpEdges, isAnsweredSocket } from './http-edges.js';
import { answerClientError, createHttpApp } from './http-routes.js';
import { serviceLogger } from './logger.js';
import { KServeFleet } from './kserve-front/fleet.js';
import { startGrpcFront, type GrpcFrontHandle } from './kserve-front/grpc-front.js';
import { createKServeHttpHandler, isKServeRequest, isOverLimitInfer } from './kserve-front/http-front.js';
import { createMetrics } from './metrics.js';
import { RepositoryLabels } from './repository-labels.js';
import { Router } from './routing/router.js';
import { createRunTaskHandler, isRunTaskRequest } from './run-task-route.js';
import { WorkerQuarantine } from './quarantine.js';
import { ReplicatedTasks } from './replication/replicated-tasks.js';
import { RedisHealth } from './replication/redis-health.js';
import { connectReplication, type ReplicationHandle } from './replication/replication.js';
import type { ReplicaState } from './replication/replica-role.js';
import { resolveReplicationOptions } from './replication/replication-options.js';
import { MemoryTaskStore } from './task-store/memory-store.js';
import { RedisTaskStore } from './task-store/redis-store.js';
import type { TaskStore } from './task-store/task-store.js';
import { TaskTracker } from './task-tracker.js';
import { createLiveView } from './ui/live-view.js';
import { WorkerEndpoint } from './worker-endpoint.js';
import { createWorkerLink } from './worker-messages.js';

/** A running dispatcher. */
export interface DispatcherHandle {
  /** `http://host:port` (loopback shown as 127.0.0.1 when listening on every interface). */
  readonly url: string;
  readonly port: number;
  /** The KServe v2 gRPC front's `host:port`; undefined when it is off (`grpcPort: false`). */
  readonly grpcAddress: string | undefined;
  /** The gRPC front's port; undefined when it is off. */
  readonly grpcPort: number | undefined;
  /** The validated options it runs with. */
  readonly options: ResolvedOptions;
  /** The routing core (read its picture; do not drive it from outside). */
  readonly router: Router;
  /** This replica's id, role, leader and lease epoch (role `standalone` without replication). */
  replica(): ReplicaState;
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
 *   KServe v2 clients ─HTTP /v2, gRPC─> kserve-front/ ─> TaskTracker (kserve_infer tasks)
 *
 * With `replication` (REDIS_URL, issue 13) the replica runs the lease loop (replication/): as the
 * leader it routes as above, every order fenced with its token; as a standby its router only
 * keeps the picture, and producers' tasks go through the Redis store and stream to the leader
 * (replication/replicated-tasks.ts). Without it nothing of that exists (no Redis client).
 */
export async function startDispatcher(options: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const resolved = resolveOptions(options);
  const asyncOptions = resolveAsyncTaskOptions(options.asyncTasks);
  checkWorkerTrust(resolved);
  const baseLogger = serviceLogger(options.logger);
  // Replicated mode: a Redis outage is one warning; its connection errors become debug records.
  const storeHealth = options.replication ? new RedisHealth(baseLogger) : undefined;
  const logger = storeHealth ? storeHealth.quiet(baseLogger) : baseLogger;
  const router = new Router({
    policy: resolved.policy,
    random: options.random ?? Math.random,
    maxQueue: resolved.maxQueue,
    maxQueuePerLabel: resolved.maxQueuePerLabel,
    failureBackoffMs: resolved.labelFailureBackoffMs,
    fairness: { weights: resolved.tenantWeights },
    demand: { halfLifeMs: resolved.routing.demandHalfLifeMs },
    costs: { defaultLoadMs: resolved.routing.defaultLoadMs },
    tuning: {
      residencyLoadMultiple: resolved.routing.residencyLoadMultiple,
      rentLoadMultiple: resolved.routing.rentLoadMultiple,
      replicaUtilisation: resolved.routing.replicaUtilisation,
      maxReplicaShare: resolved.routing.maxReplicaShare,
      prewarm: resolved.routing.prewarm,
      releaseSurplus: resolved.routing.releaseSurplus,
    },
  });
  const quarantine = new WorkerQuarantine({
    strikes: resolved.quarantineStrikes,
    windowMs: resolved.quarantineWindowMs,
    cooldownMs: resolved.quarantineMs,
    maxCooldownMs: resolved.quarantineMs * 10,
  });
  const replicationOptions = options.replication ? resolveReplicationOptions(options.replication) : undefined;
  if (replicationOptions && options.taskStore && options.taskStore.kind !== 'redis')
    throw new ConfigError(
      'TASK_STORE',
      `must be the Redis store on REDIS_URL when replication is on (got a ${options.taskStore.kind} store)`,
    );
  const ownStore = options.taskStore === undefined;
  // Replicas share their tasks: without a store passed in, the Redis store on the replication URL.
  const rawStore: TaskStore =
    options.taskStore ??
    (replicationOptions
      ? await RedisTaskStore.connect({
          url: replicationOptions.redisUrl,
          keyPrefix: replicationOptions.keyPrefix,
          logger,
        })
      : new MemoryTaskStore());
  // Set once the replication is connected (below); undefined: standalone.
  let replication: ReplicationHandle | undefined;
  const replicaState = (): ReplicaState =>
    replication ? replication.role.state() : { id: '', role: 'standalone', leader_id: '', epoch: 0 };
  // A standby keeps the fleet's picture but decides nothing until it leads.
  if (replicationOptions) router.passive = true;
  const metrics = createMetrics(
    {
      queueDepths: () => router.queueDepths(),
      get workerCount() {
        return router.workerCount;
      },
      get quarantinedCount() {
        return quarantine.size;
      },
      get quarantinedPeerCount() {
        return endpoint.quarantinedPeers();
      },
    },
    {
      logRecordsDropped: options.logRecordsDropped,
      storedTasks: () => rawStore.countByStatus(),
      ...(replicationOptions ? { replica: replicaState } : {}),
      ...(storeHealth ? { sharedStoreUp: () => storeHealth.reachable } : {}),
    },
  );
  const store = timedStore(rawStore, metrics.taskStoreSeconds);
  const repository = resolved.modelRepository
    ? new RepositoryLabels(resolved.modelRepository, resolved.repositoryCacheMs)
    : undefined;
  const liveView = createLiveView({ router, metrics, logger, apiKeys: resolved.apiKeys });
  const { feed } = liveView;
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
    onRefused: (code) => metrics.workerUpgradesRefused.inc({ code }),
    ...(replicationOptions
      ? {
          replica: () => {
            const role = replication?.role;
            return {
              fencingToken: role?.token ?? 0,
              replicaId: replicationOptions.replicaId,
              role: role?.role ?? 'standby',
            };
          },
        }
      : {}),
    events: {
      // The live view's feed hears each event after the tracker applied it.
      joined: (info) => (tracker.onWorkerJoined(info), feed.workerJoined(info)),
      left: (id, reason) => (tracker.onWorkerLeft(id, reason), feed.workerLeft(id, reason)),
      taskResult: (id, result) => tracker.onTaskResult(id, result),
      labelEvent: (id, event) => (tracker.onLabelEvent(id, event), feed.labelEvent(id, event)),
      heartbeat: (id, beat) => tracker.onHeartbeat(id, beat),
    },
  });
  const tracker = new TaskTracker({
    router,
    options: resolved,
    metrics,
    logger,
    repository,
    workers: createWorkerLink(
      (id, message) => endpoint.send(id, message),
      replicationOptions
        ? {
            token: () => replication?.role.token ?? 0,
            mayOrder: () => replication?.role.mayOrder() === true,
          }
        : undefined,
    ),
    quarantine,
    ...(replicationOptions
      ? {
          onStaleLeader: () => replication?.role.stepDown('a worker answered stale_leader'),
          onUnknownResult: (workerId: string, result: TaskResult) =>
            replicated?.relayResult(workerId, result),
          onAbandoned: (taskId: string) => replicated?.abandoned(taskId),
          trackRunning: true,
        }
      : {}),
  });
  const asyncTasks = new AsyncTasks({
    store,
    tracker,
    router,
    options: asyncOptions,
    metrics,
    logger,
    ...(replicationOptions ? { forward: (taskId: string) => replicated!.forwardAsync(taskId) } : {}),
  });
  const runTask = createRunTaskHandler({
    options: resolved,
    tracker,
    logger,
    submit: replicationOptions
      ? (req, reply) => replicated!.submitSync(req, reply)
      : (req, reply) => asyncTasks.submitSync(req, reply),
  });
  const app = createHttpApp({
    options: resolved,
    router,
    runTask,
    metrics,
    logger,
    repository,
    isDraining: () => draining,
    liveView,
    isQuarantined: (id) => quarantine.isQuarantined(id),
    retireLabel: (label) => tracker.retireLabel(label, RETIRE_TIMEOUT_MS),
    asyncTasks,
    ...(replicationOptions ? { replica: replicaState } : {}),
    ...(storeHealth ? { sharedStoreUp: () => storeHealth.reachable } : {}),
  });
  const fleet = new KServeFleet({
    options: resolved,
    router,
    tracker,
    repository,
    logger,
    isDraining: () => draining,
    ...(replicationOptions
      ? {
          forwarding: {
            forwards: () => replication?.role.mayOrder() !== true,
            infer: (model, infer, tenant, reply) => replicated!.forwardInfer(model, infer, tenant, reply),
            runTask: (req, reply) => replicated!.submitSync(req, reply),
          },
        }
      : {}),
  });
  const v2 = createKServeHttpHandler({ options: resolved, fleet, logger });
  // POST /run-task and the KServe v2 routes skip Express (hot paths); every other request goes to it.
  server.on('request', (req, res) => {
    if (isAnsweredSocket(req)) return void req.resume(); // over the connection cap: answered already
    if (isRunTaskRequest(req)) runTask(req, res);
    else if (isKServeRequest(req)) v2(req, res);
    else app(req, res);
  });
  // Expect: 100-continue: an over-limit infer gets its 413 before the client sends the body.
  server.on('checkContinue', (req, res) => {
    if (isOverLimitInfer(req, resolved)) {
      res.setHeader('Connection', 'close');
      v2(req, res);
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('clientError', answerClientError);
  const ticker = setInterval(() => {
    try {
      tracker.tick();
    } catch (err) {
      logger.error({ err, event: 'tick_failed' }, 'routing tick failed');
    }
  }, resolved.tickIntervalMs).unref();

  let replicated: ReplicatedTasks | undefined;
  let http: ListeningServer;
  try {
    if (replicationOptions) {
      const replicaId = replicationOptions.replicaId;
      replication = await connectReplication(
        replicationOptions,
        baseLogger,
        {
          promote: async (token) => {
            metrics.failovers.inc();
            router.passive = false;
            // (2) the store's unfinished tasks, (3) Leadership on every link, (4) the stream.
            await replicated!.adoptUnfinished();
            if (!replication?.role.mayOrder() || replication.lease.token !== token) return;
            endpoint.broadcast({ leadership: { fencingToken: token, replicaId } });
            tracker.leadershipAnnounced();
            replication.stream.startConsuming((taskId) => replicated!.onStreamEntry(taskId));
            logger.info({ event: 'replica_leader', replica_id: replicaId, token }, 'replica leads');
          },
          demote: () => {
            router.passive = true;
            replication?.stream.stopConsuming();
            tracker.handOver();
            asyncTasks.handOver();
          },
        },
        storeHealth,
      );
      replicated = new ReplicatedTasks({
        replicaId,
        store,
        stream: replication.stream,
        bytes: replication.bytes,
        tracker,
        asyncTasks,
        metrics,
        logger,
        isLeader: () => replication?.role.mayOrder() === true,
        taskTimeoutMs: resolved.taskTimeoutMs,
      });
    } else {
      // Accepted tasks of a previous run go back in line before anything new is accepted (with
      // replication, the leader takes them over when it takes the lease).
      await asyncTasks.recover();
    }
    http = await listen(server, { port: resolved.port, host: resolved.host, closeGraceMs: 1000 });
  } catch (err) {
    clearInterval(ticker);
    liveView.close();
    await asyncTasks.close();
    await replication?.close();
    if (ownStore) await rawStore.close();
    await endpoint.close();
    throw err;
  }
  const { url, port } = http;
  let grpcFront: GrpcFrontHandle | undefined;
  if (resolved.grpcPort !== false) {
    try {
      grpcFront = await startGrpcFront({
        options: resolved,
        fleet,
        logger,
        host: resolved.host,
        port: resolved.grpcPort,
      });
    } catch (err) {
      clearInterval(ticker);
      await replication?.close();
      await endpoint.close();
      await http.close();
      throw err;
    }
  }
  replication?.start();

  let shutdown: Promise<void> | undefined;
  let cutGrace: () => void = () => {};
  const graceCut = new Promise<void>((resolve) => (cutGrace = resolve));

  const drain = (graceMs: number = resolved.shutdownGraceMs): Promise<void> => {
    shutdown ??= (async () => {
      draining = true;
      tracker.stopAdmitting();
      // Forwarded tasks wait in the stream for the next leader; in-flight ones finish here.
      replication?.stream.stopConsuming();
      logger.info({ event: 'dispatcher_draining', pending: tracker.size, grace_ms: graceMs }, 'draining');
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        tracker.whenIdle(),
        graceCut,
        new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, graceMs).unref())),
      ]);
      clearTimeout(graceTimer);
      endpoint.drainAll('dispatcher shutting down');
      if (replication) {
        // What is left stays unfinished in the shared store: the next leader takes it over.
        // Stepping down hands waiting tasks to the next leader (through the stream) and releases the lease.
        replication.role.stepDown('the replica shuts down');
        router.passive = true;
        tracker.handOver();
        await replicated?.close();
        await replication.close();
      } else {
        // Async tasks given back here stay unfinished in the store: the next start re-queues them.
        tracker.failAll('shutting_down', 'the dispatcher shut down before the task finished');
      }
      await asyncTasks.close();
      if (ownStore) await rawStore.close();
      clearInterval(ticker);
      // Every call was answered just above; the gRPC front only has to stop listening.
      await grpcFront?.close();
      liveView.close();
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
    grpcAddress: grpcFront?.address,
    grpcPort: grpcFront?.port,
    options: resolved,
    router,
    replica: replicaState,
    drain,
    close: () => {
      cutGrace();
      return drain(0);
    },
  };
}
