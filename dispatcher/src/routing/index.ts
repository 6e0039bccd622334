/**
 * @smart-routing/dispatcher/routing — the pure routing core, for code that drives it itself (the
 * benchmark's simulator and routing benchmark): no sockets, timers or clock; `now` is always an
 * argument, so a virtual clock drives it exactly as the server drives it live.
 *
 *   events ──> Router ──> Decision[]        send {taskId, workerId, label, evictLabel, expectMiss}
 *               ├─ Registry   (workers, MRU labels, slots, in-flight, failing labels, indices)
 *               ├─ TaskQueues (per-label FIFOs + common FIFO, one global order, O(1) removal)
 *               ├─ CostModel  (EWMA load / run times per label)
 *               └─ policy     random | idle-first | affinity (see policies/*)
 *
 * A simulation loop, with LabelCache playing each worker's label rules:
 *
 *   const router = new Router({ policy: 'affinity', random: seededRandom(1) });
 *   handle(router.addWorker(t, { id: 'w1', labelCapacity: 2, taskSlots: 1, loadedLabels: [], taskTypes: [] }));
 *   handle(router.submit(t, { id: 't1', label: 'label-1', taskType: 'embed_texts' }));
 *   // for each 'send' d: const use = cache[d.workerId].use(d.label, d.evictLabel);
 *   //   on a miss, after loadMs: router.labelEvent(t1, d.workerId, { kind: 'loaded', label, durationMs: loadMs, ... })
 *   //   finish at t + (use.miss ? loadMs : 0) + runMs, then:
 *   handle(router.taskFinished(t2, d.workerId, d.taskId,
 *     { labelMiss: use.miss, runMs, loadedLabels: cache[d.workerId].labels }));
 *   handle(router.tick(t));  // every few tens of ms of virtual time
 */
export { CostModel } from './cost-model.js';
export type { CostModelOptions } from './cost-model.js';
export { DemandModel } from './demand.js';
export type { DemandOptions } from './demand.js';
export { DEFAULT_PLACEMENT_TUNING } from './eviction.js';
export type { PlacementTuning } from './eviction.js';
export { FairShare } from './fair-share.js';
export type { FairShareOptions } from './fair-share.js';
export { LabelCache } from './label-cache.js';
export type { LabelCacheOptions, LabelUse } from './label-cache.js';
export type { Prewarm } from './replicas.js';
export { affinityPolicy } from './policies/affinity.js';
export { idleFirstPolicy } from './policies/idle-first.js';
export { randomPolicy } from './policies/random.js';
export { evictionFor, pickOldest } from './policy.js';
export type { Pick, Placement, PolicyContext, RoutingPolicy } from './policy.js';
export { COMMON_QUEUE, TaskQueues } from './queues.js';
export type { QueuedTask } from './queues.js';
export { seededRandom } from './random.js';
export type { RandomSource } from './random.js';
export { Registry } from './registry.js';
export type { WorkerRecord, WorkerView } from './registry.js';
export { POLICIES, Router } from './router.js';
export type { RouterOptions } from './router.js';
export { NO_LABEL, POLICY_NAMES } from './types.js';
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
} from './types.js';
