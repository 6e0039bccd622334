/**
 * @smart-routing/dispatcher — two layers, both exported here.
 *
 * 1. The routing core (pure: no sockets, timers or clock; `now` is always an argument), which the
 *    benchmark's simulator drives with a virtual clock exactly as the server drives it live:
 *
 *      events ──> Router ──> Decision[]        send {taskId, workerId, label, evictLabel, expectMiss}
 *                  ├─ Registry   (workers, MRU labels, slots, in-flight, failing labels, indices)
 *                  ├─ TaskQueues (per-label FIFOs + common FIFO, one global order, O(1) removal)
 *                  ├─ CostModel  (EWMA load / run times per label)
 *                  └─ policy     random | idle-first | affinity (see routing/policies/*)
 *
 *    A simulation loop, with LabelCache playing each worker's label rules:
 *
 *      const router = new Router({ policy: 'affinity', random: seededRandom(1) });
 *      handle(router.addWorker(t, { id: 'w1', labelCapacity: 2, taskSlots: 1, loadedLabels: [], taskTypes: [] }));
 *      handle(router.submit(t, { id: 't1', label: 'label-1', taskType: 'embed_texts' }));
 *      // for each 'send' d: const use = cache[d.workerId].use(d.label, d.evictLabel);
 *      //   finish at t + (use.miss ? loadMs : 0) + runMs, then:
 *      handle(router.taskFinished(t2, d.workerId, d.taskId,
 *        { labelMiss: use.miss, loadMs, runMs, loadedLabels: cache[d.workerId].labels }));
 *      handle(router.tick(t));  // every few tens of ms of virtual time
 *
 * 2. The server: `startDispatcher(options)` — Express HTTP API + worker WebSocket endpoint around
 *    one Router (see dispatcher.ts), and the `smart-routing-dispatcher` bin (cli.ts).
 */
export { CostModel } from './routing/cost-model.js';
export type { CostModelOptions } from './routing/cost-model.js';
export { DemandModel } from './routing/demand.js';
export type { DemandOptions } from './routing/demand.js';
export { DEFAULT_PLACEMENT_TUNING } from './routing/eviction.js';
export type { PlacementTuning } from './routing/eviction.js';
export { FairShare } from './routing/fair-share.js';
export type { FairShareOptions } from './routing/fair-share.js';
export { LabelCache } from './routing/label-cache.js';
export type { LabelCacheOptions, LabelUse } from './routing/label-cache.js';
export type { Prewarm } from './routing/replicas.js';
export { affinityPolicy } from './routing/policies/affinity.js';
export { idleFirstPolicy } from './routing/policies/idle-first.js';
export { randomPolicy } from './routing/policies/random.js';
export { evictionFor, pickOldest } from './routing/policy.js';
export type { Pick, Placement, PolicyContext, RoutingPolicy } from './routing/policy.js';
export { COMMON_QUEUE, TaskQueues } from './routing/queues.js';
export type { QueuedTask } from './routing/queues.js';
export { seededRandom } from './routing/random.js';
export type { RandomSource } from './routing/random.js';
export { Registry } from './routing/registry.js';
export type { WorkerRecord, WorkerView } from './routing/registry.js';
export { POLICIES, Router } from './routing/router.js';
export type { RouterOptions } from './routing/router.js';
export { POLICY_NAMES } from './routing/types.js';
export type {
  Decision,
  InFlightTask,
  LabelReport,
  PolicyName,
  RoutingWorkerState,
  TaskReport,
  TaskSpec,
  WorkerInfo,
  WorkerStatus,
} from './routing/types.js';
export { ConfigError, ENV_VARS, loadConfig, resolveOptions } from './config.js';
export type { DispatcherConfig, DispatcherOptions, EnvVar, LogLevel, ResolvedOptions } from './config.js';
export { startDispatcher } from './dispatcher.js';
export type { DispatcherHandle } from './dispatcher.js';
export { DISPATCHER_ERRORS, DispatcherError } from './errors.js';
export type { DispatcherErrorCode, ErrorBody } from './errors.js';
export { createMetrics } from './metrics.js';
export type { DispatcherMetrics, MetricsSource } from './metrics.js';
export { WORKER_PATH } from './worker-endpoint.js';
