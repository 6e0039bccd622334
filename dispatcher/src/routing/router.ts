/**
 * The pure routing core: registry + queues + cost model + a policy, driven by events, answering
 * with decisions. No sockets, no timers, no clock: every call takes `now` (ms, any monotonic
 * origin), so the dispatcher feeds it wall-clock time and a simulator feeds it virtual time.
 *
 *   events in                                    decisions out
 *   ─────────                                    ─────────────
 *   addWorker(now, hello)      ──┐           ┌──> send    {taskId, workerId, label, evictLabel}
 *   updateWorker(now, beat)    ──┤           ├──> queue   {taskId, queue: label | '*'}
 *   submit(now, task, front?)  ──┼─> Router ─┼──> reject  {taskId, reason: 'queue_full'}
 *   taskFinished(now, w, t, r) ──┤   │       └──> load / unload {workerId, label}
 *   labelEvent(now, w, ev)     ──┤   │
 *   tick(now)                  ──┤   ├── Registry  workers, labels (MRU), slots, in-flight, indices
 *   removeWorker(now, w)       ──┘   ├── TaskQueues per-label FIFOs + common FIFO + global order
 *     └─> in-flight tasks back       ├── CostModel EWMA load / run times per label
 *   cancel(taskId)                   └── RoutingPolicy  random | idle-first | affinity
 *
 * A label-free task (`label` = NO_LABEL, for a type `isLabelFree` says every serving worker runs
 * without a model) skips the policy: any available worker serving its type takes it, else it waits
 * in the common queue; it touches no label, never carries an eviction and teaches no costs.
 *
 * The registry is optimistic: a `send` marks the label loaded-or-loading on that worker and the
 * eviction done, at once; the worker's reports (loadedLabels in task results, label events and
 * heartbeats) are the truth and correct it. Every call is O(capacity + log n) in workers and
 * labels, plus at most `scanLimit` candidates examined.
 */
import { CostModel, type CostModelOptions } from './cost-model.js';
import { DemandModel, type DemandOptions } from './demand.js';
import { DEFAULT_PLACEMENT_TUNING, type PlacementTuning } from './eviction.js';
import { FairShare, type FairShareOptions } from './fair-share.js';
import { affinityPolicy } from './policies/affinity.js';
import { idleFirstPolicy } from './policies/idle-first.js';
import { randomPolicy } from './policies/random.js';
import type { Placement, PolicyContext, RoutingPolicy } from './policy.js';
import { COMMON_QUEUE, TaskQueues } from './queues.js';
import { seededRandom, type RandomSource } from './random.js';
import { Registry, type WorkerRecord, type WorkerView } from './registry.js';
import { taskErrorRule } from '@smart-routing/proto';
import {
  NO_LABEL,
  type Decision,
  type InFlightTask,
  type LabelReport,
  type PolicyName,
  type TaskReport,
  type TaskSpec,
  type WorkerInfo,
  type WorkerStatus,
} from './types.js';

/** Options of {@link Router}. */
export interface RouterOptions {
  /** A built-in policy name or a custom policy. Default `affinity`. */
  policy?: PolicyName | RoutingPolicy;
  /** Uniform [0, 1) source for random picks. Default `seededRandom(1)` (reproducible). */
  random?: RandomSource;
  /** Most tasks waiting in all queues; more are rejected (`queue_full`). Default 1000. */
  maxQueue?: number;
  /** Most tasks waiting for one label. Default 500. */
  maxQueuePerLabel?: number;
  /** How long a worker avoids a label after it failed to load there (ms). Default 30000. */
  failureBackoffMs?: number;
  /** Learned-cost settings (EWMA weight, defaults before measurements). */
  costs?: CostModelOptions;
  /** Most candidates examined per decision. Default 32. */
  scanLimit?: number;
  /** Aging of the per-label request rates (half-life). */
  demand?: DemandOptions;
  /** Residency, replica and prewarm settings; defaults in {@link DEFAULT_PLACEMENT_TUNING}. */
  tuning?: Partial<PlacementTuning>;
  /** Tenant weights for fair queueing (`TaskSpec.tenant`). */
  fairness?: FairShareOptions;
}

/** The built-in policies by name. */
export const POLICIES: Readonly<Record<PolicyName, RoutingPolicy>> = Object.freeze({
  random: randomPolicy,
  'idle-first': idleFirstPolicy,
  affinity: affinityPolicy,
});

/** The routing core; see the file header for the event/decision flow. */
export class Router {
  readonly registry: Registry;
  readonly queues = new TaskQueues();
  readonly costs: CostModel;
  readonly demand: DemandModel;
  readonly fairShare: FairShare;
  /** Fair-queueing tag of every task queued or in flight. */
  private readonly tags = new Map<string, number>();
  /** Tasks whose tag already includes a load (their label had no holder when they arrived). */
  private readonly chargedLoad = new Set<string>();
  readonly policy: RoutingPolicy;
  private readonly ctx: PolicyContext;
  private readonly maxQueue: number;
  private readonly maxQueuePerLabel: number;
  private readonly failureBackoffMs: number;
  /**
   * A standby's router (replicated mode): it keeps the fleet's picture from the workers' reports
   * but decides nothing (no sends, loads or unloads) [false].
   */
  passive = false;

  constructor(options: RouterOptions = {}) {
    const policy = options.policy ?? 'affinity';
    if (typeof policy === 'string') {
      const builtIn = POLICIES[policy];
      if (!builtIn) throw new TypeError(`unknown routing policy: ${JSON.stringify(policy)}`);
      this.policy = builtIn;
    } else {
      this.policy = policy;
    }
    this.costs = new CostModel(options.costs);
    this.demand = new DemandModel(options.demand);
    this.fairShare = new FairShare(options.fairness);
    this.registry = new Registry({ footprintOf: (label) => this.costs.footprintBytes(label) });
    this.maxQueue = options.maxQueue ?? 1000;
    this.maxQueuePerLabel = options.maxQueuePerLabel ?? 500;
    this.failureBackoffMs = options.failureBackoffMs ?? 30_000;
    this.ctx = {
      registry: this.registry,
      queues: this.queues,
      costs: this.costs,
      demand: this.demand,
      fairShare: this.fairShare,
      tuning: Object.freeze({ ...DEFAULT_PLACEMENT_TUNING, ...options.tuning }),
      random: options.random ?? seededRandom(1),
      scanLimit: options.scanLimit ?? 32,
    };
    const key = this.policy.evictionKey?.bind(this.policy);
    if (key) this.registry.setLabelValue((w, label) => key(this.ctx, w, label));
  }

  // ------------------------------------------------------------------ events

  /** A worker joined (its Hello). Throws if the id is registered. Fills its free slots from the queues. */
  addWorker(now: number, info: WorkerInfo): Decision[] {
    const w = this.registry.add(info, now);
    return this.pump(now, w);
  }

  /**
   * A worker left (socket closed, timed out). Returns the tasks it had in flight, so the caller can
   * retry them (`submit(now, task, { front: true })`) or fail them. Unknown ids return [].
   */
  removeWorker(_now: number, workerId: string): InFlightTask[] {
    const w = this.registry.remove(workerId);
    if (!w) return [];
    for (const id of w.inFlight.keys()) this.tags.delete(id);
    return [...w.inFlight.values()];
  }

  /** A worker's status report (Heartbeat): state and loaded labels. Unblocks a `no_slot` worker. */
  updateWorker(now: number, workerId: string, status: WorkerStatus): Decision[] {
    const w = this.registry.get(workerId);
    if (!w) return [];
    this.registry.expireFailures(w, now);
    if (status.state) this.registry.setState(w, status.state);
    if (status.loadedLabels) this.registry.applyLoadedLabels(w, status.loadedLabels, now);
    this.registry.setBlocked(w, false);
    return this.pump(now, w);
  }

  /**
   * A task arrived, or is retried (`front: true`: it goes before every waiting task and ignores
   * the queue limits, since it was already admitted). Returns a `send`, a `queue` or a `reject`;
   * when an older task of the same label waits, that one is sent and the new one queued behind.
   * Throws if a task with this id is already queued or in flight.
   */
  submit(now: number, task: TaskSpec, options: { front?: boolean } = {}): Decision[] {
    if (this.queues.has(task.id) || this.registry.inFlight(task.id))
      throw new Error(`task ${task.id} is already queued or in flight`);
    const out: Decision[] = [];
    const front = options.front === true;
    const queue = task.label === NO_LABEL ? COMMON_QUEUE : this.policy.queueFor(task);
    // A retry was counted and tagged when it first arrived: it goes before everyone.
    if (!front && task.label !== NO_LABEL) this.demand.observe(task.label, now);
    // A task for a label nobody holds is charged its load up front; see send() for the rest.
    const coldAtArrival = task.label !== NO_LABEL && this.registry.holderCount(task.label) === 0;
    const cost = this.costs.runMs(task.label) + (coldAtArrival ? this.costs.loadMs(task.label) : 0);
    const tag = front ? -Infinity : this.fairShare.tag(task.tenant, cost);
    if (!front && coldAtArrival) this.chargedLoad.add(task.id);
    const placement = this.place(task, now);
    if (placement) {
      const head = front ? undefined : this.queues.headOf(queue);
      if (
        head &&
        head.task.label === task.label &&
        (head.task.priority ?? 0) >= (task.priority ?? 0) &&
        this.registry.canRun(placement.worker, head.task, now)
      ) {
        // FIFO within a label and priority: the oldest waiting task takes the slot, the new one waits its turn.
        this.queues.remove(head.task.id);
        this.send(now, placement.worker, head.task, placement, out);
        this.queues.push(task, queue, now, false, tag);
        this.tags.set(task.id, tag);
        out.push({ type: 'queue', taskId: task.id, queue });
      } else {
        this.tags.set(task.id, tag);
        this.send(now, placement.worker, task, placement, out);
      }
      return out;
    }
    if (
      !front &&
      (this.queues.size >= this.maxQueue || this.queues.countForLabel(task.label) >= this.maxQueuePerLabel)
    ) {
      this.chargedLoad.delete(task.id);
      out.push({ type: 'reject', taskId: task.id, reason: 'queue_full' });
      return out;
    }
    this.queues.push(task, queue, now, front, tag);
    this.tags.set(task.id, tag);
    out.push({ type: 'queue', taskId: task.id, queue });
    return out;
  }

  /**
   * A worker reported on a task (its TaskResult, success or error): the slot is free, the run time
   * is learned (load times come from `labelEvent`), the label picture corrected, and the worker
   * takes its next task. What an error code says about the worker is TASK_ERROR_TABLE's `worker`
   * (@smart-routing/proto): `label_failing` (it avoids that label for `failureBackoffMs`),
   * `draining` (it takes no more tasks), `blocked` (no tasks until its next report).
   * Re-submitting the task is the caller's choice.
   */
  taskFinished(now: number, workerId: string, taskId: string, report: TaskReport): Decision[] {
    const w = this.registry.get(workerId);
    if (!w) return [];
    const entry = this.registry.finishTask(w, taskId);
    if (entry) this.tags.delete(taskId);
    const rule = report.errorCode === undefined ? undefined : taskErrorRule(report.errorCode);
    if (entry && entry.task.label !== NO_LABEL) {
      const label = entry.task.label;
      if ((rule === undefined || rule.ran) && report.runMs !== undefined && report.runMs > 0)
        this.costs.observeRun(label, report.runMs);
      if (rule?.worker === 'label_failing') this.registry.markFailing(w, label, now + this.failureBackoffMs);
    }
    if (rule?.worker === 'draining') this.registry.setState(w, 'draining');
    // A full worker, or one whose model server is down, gets nothing until its next report.
    this.registry.setBlocked(w, rule?.worker === 'blocked');
    if (report.loadedLabels) this.registry.applyLoadedLabels(w, report.loadedLabels, now);
    return this.pump(now, w);
  }

  /** A worker reported a label change (its LabelEvent). */
  labelEvent(now: number, workerId: string, report: LabelReport): Decision[] {
    const w = this.registry.get(workerId);
    if (!w) return [];
    if (report.kind === 'loaded') {
      if (report.durationMs && report.durationMs > 0) this.costs.observeLoad(report.label, report.durationMs);
      if (report.footprintBytes) this.costs.observeFootprint(report.label, report.footprintBytes);
      this.registry.confirmLoaded(w, report.label, now, report.footprintBytes);
    } else if (report.kind === 'evicted') {
      this.registry.confirmEvicted(w, report.label);
    } else {
      this.registry.markFailing(w, report.label, now + this.failureBackoffMs);
    }
    if (report.loadedLabels) this.registry.applyLoadedLabels(w, report.loadedLabels, now);
    return this.pump(now, w);
  }

  /**
   * A new version of `label` was published: every worker holding it unloads it (the next task
   * loads the new one). Returns the unload orders.
   */
  retireLabel(_now: number, label: string): Decision[] {
    const out: Decision[] = [];
    for (const w of this.registry.values()) {
      if (!w.labels.includes(label)) continue;
      this.registry.unloadLabel(w, label);
      out.push({ type: 'unload', workerId: w.id, label });
    }
    return out;
  }

  /**
   * Records a task another replica already sent to `workerId` (a failover takes it over): its slot
   * is taken, nothing is sent. False when the worker is unknown or the task is already known.
   */
  adopt(now: number, workerId: string, task: TaskSpec): boolean {
    const w = this.registry.get(workerId);
    if (!w || this.queues.has(task.id) || this.registry.inFlight(task.id)) return false;
    this.registry.startTask(w, task, undefined, now);
    return true;
  }

  /**
   * Forgets a task whose producer stopped waiting (timeout, disconnect). A queued task is removed;
   * an in-flight one keeps its slot until the worker reports. Returns where it was.
   */
  cancel(taskId: string): 'queued' | 'in_flight' | 'unknown' {
    if (this.queues.remove(taskId)) {
      this.tags.delete(taskId);
      this.chargedLoad.delete(taskId);
      return 'queued';
    }
    return this.registry.inFlight(taskId) ? 'in_flight' : 'unknown';
  }

  /**
   * Re-examines waiting tasks, oldest first (at most `scanLimit`), while some worker is available:
   * tasks that waited past their label's expected load time, lost their holders or can run again
   * after a failure back-off get placed. Cheap when nothing waits or nobody is free; call it every
   * few tens of ms.
   */
  tick(now: number): Decision[] {
    const out: Decision[] = [];
    if (this.passive) return out;
    if (this.registry.availableCount === 0 || this.queues.size === 0) return out;
    for (const queued of [...this.queues.inOrder(this.ctx.scanLimit)]) {
      if (this.registry.availableCount === 0) break;
      const placement = this.place(queued.task, now, now - queued.enqueuedAt);
      if (!placement) continue;
      this.queues.remove(queued.task.id);
      this.send(now, placement.worker, queued.task, placement, out);
    }
    return out;
  }

  // ------------------------------------------------------------------ queries

  /**
   * Whether tasks of this type go label-free (submit them with `label` = NO_LABEL): every
   * connected worker serving the type announced it in `labelFreeTaskTypes`.
   */
  isLabelFree(taskType: string): boolean {
    return this.registry.isLabelFree(taskType);
  }

  /** The in-flight task with this id (where it was sent, with what), if any. */
  inFlightTask(taskId: string): InFlightTask | undefined {
    return this.registry.inFlight(taskId);
  }

  /** Whether a task with this id is queued or in flight. */
  has(taskId: string): boolean {
    return this.queues.has(taskId) || this.registry.inFlight(taskId) !== undefined;
  }

  /** A worker's current picture. */
  worker(id: string): WorkerView | undefined {
    return this.registry.get(id);
  }

  /** Every worker, in join order. */
  workers(): IterableIterator<WorkerView> {
    return this.registry.values();
  }

  /** Number of connected workers. */
  get workerCount(): number {
    return this.registry.size;
  }

  /** Number of waiting tasks. */
  get queuedCount(): number {
    return this.queues.size;
  }

  /** Waiting tasks per queue (`*` = common queue); empty queues are left out. */
  queueDepths(): Map<string, number> {
    return this.queues.depths();
  }

  /** Label -> ids of the workers holding or loading it (draining workers included). O(workers). */
  labelHolders(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const w of this.registry.values()) {
      for (const label of w.labels) {
        const list = out.get(label);
        if (list) list.push(w.id);
        else out.set(label, [w.id]);
      }
    }
    return out;
  }

  /** See {@link Registry.taskTypeStatus}. */
  taskTypeStatus(taskType: string): 'served' | 'gone' | 'waiting' | 'unknown' {
    return this.registry.taskTypeStatus(taskType);
  }

  /** Expected time to serve every waiting task: queued x mean run time / ready slots (ms). */
  expectedDrainMs(): number {
    return (this.queues.size * this.costs.meanRunMs()) / Math.max(1, this.registry.totalReadySlots);
  }

  // ------------------------------------------------------------------ internals

  /** Where a task runs now: the policy's answer, or for a label-free task any available server of its type. */
  private place(task: TaskSpec, now: number, waitedMs?: number): Placement | undefined {
    if (task.label !== NO_LABEL) return this.policy.place(task, this.ctx, now, waitedMs);
    for (const worker of this.registry.available(this.ctx.random, this.ctx.scanLimit))
      if (this.registry.canRun(worker, task, now)) return { worker, evictLabel: undefined };
    return undefined;
  }

  private send(
    now: number,
    w: WorkerRecord,
    task: TaskSpec,
    placement: { readonly evictLabel: string | undefined; readonly alsoEvict?: readonly string[] },
    out: Decision[],
  ): void {
    const evictLabel = placement.evictLabel;
    for (const label of placement.alsoEvict ?? []) {
      this.registry.unloadLabel(w, label);
      out.push({ type: 'unload', workerId: w.id, label });
    }
    const entry = this.registry.startTask(w, task, evictLabel, now);
    // A cold load is charged to the tenant whose task caused it (once).
    if (entry.expectMiss && !this.chargedLoad.has(task.id))
      this.fairShare.charge(task.tenant, this.costs.loadMs(task.label));
    this.chargedLoad.delete(task.id);
    this.fairShare.served(this.tags.get(task.id) ?? 0);
    out.push({
      type: 'send',
      taskId: task.id,
      workerId: w.id,
      label: task.label,
      evictLabel,
      expectMiss: entry.expectMiss,
    });
  }

  /** Fills `w`'s free slots with the waiting tasks the policy picks for it. */
  private pump(now: number, w: WorkerRecord): Decision[] {
    const out: Decision[] = [];
    if (this.passive) return out;
    while (this.registry.isAvailable(w)) {
      const pick = this.policy.pick(w, this.ctx, now);
      if (!pick) break;
      this.queues.remove(pick.queued.task.id);
      this.send(now, w, pick.queued.task, pick, out);
    }
    if (this.policy.prewarm && this.registry.isAvailable(w)) {
      const warm = this.policy.prewarm(w, this.ctx, now);
      if (warm) {
        for (const label of warm.unload) {
          this.registry.unloadLabel(w, label);
          out.push({ type: 'unload', workerId: w.id, label });
        }
        this.registry.startLoad(w, warm.label, now);
        out.push({ type: 'load', workerId: w.id, label: warm.label });
        return out;
      }
    }
    if (this.policy.release && this.registry.isAvailable(w)) {
      for (const label of this.policy.release(w, this.ctx, now)) {
        this.registry.unloadLabel(w, label);
        out.push({ type: 'unload', workerId: w.id, label });
      }
    }
    return out;
  }
}
