import type { CostModel } from './cost-model.js';
import type { DemandModel } from './demand.js';
import type { PlacementTuning } from './eviction.js';
import type { FairShare } from './fair-share.js';
import type { QueuedTask, TaskQueues } from './queues.js';
import type { RandomSource } from './random.js';
import type { Prewarm } from './replicas.js';
import type { Registry, WorkerRecord } from './registry.js';
import { NO_LABEL, type TaskSpec } from './types.js';

/** Where a task should run, and the label the worker must unload first (if any). */
export interface Placement {
  readonly worker: WorkerRecord;
  readonly evictLabel: string | undefined;
  /** More labels to unload first (`unload` orders), when one eviction does not make room. */
  readonly alsoEvict?: readonly string[];
}

/** A waiting task a worker with a free slot should take, and the eviction it needs. */
export interface Pick {
  readonly queued: QueuedTask;
  readonly evictLabel: string | undefined;
  /** More labels to unload first, as in {@link Placement.alsoEvict}. */
  readonly alsoEvict?: readonly string[];
}

/** What a policy may read. Policies never mutate it: the router applies their answers. */
export interface PolicyContext {
  readonly registry: Registry;
  readonly queues: TaskQueues;
  readonly costs: CostModel;
  /** Aged request rates per label. */
  readonly demand: DemandModel;
  /** Fair-queueing state across tenants. */
  readonly fairShare: FairShare;
  /** Residency, replica and prewarm settings. */
  readonly tuning: PlacementTuning;
  readonly random: RandomSource;
  /**
   * Most candidates a policy examines per decision (skipping workers that do not serve the task
   * type or are backing off the label), so a decision stays O(1) in the fleet size.
   */
  readonly scanLimit: number;
}

/**
 * A routing policy: two questions, asked by the router with the time as a plain number.
 * Implementations are stateless; all state lives in the context.
 */
export interface RoutingPolicy {
  readonly name: string;
  /** The queue a task waits in: its label, or `COMMON_QUEUE`. */
  queueFor(task: TaskSpec): string;
  /**
   * Where `task` should run now, or undefined to let it wait. `waitedMs` is undefined for an
   * arrival or a retry, and the time already spent waiting when the router re-examines a queued
   * task on a tick.
   */
  place(task: TaskSpec, ctx: PolicyContext, now: number, waitedMs?: number): Placement | undefined;
  /** Worker `w` has a free slot: the waiting task it should take next, or undefined. */
  pick(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined;
  /**
   * Optional: `w` has a free slot and nothing to take; a label it should load ahead of demand.
   * Policies without it never emit `load` decisions.
   */
  prewarm?(w: WorkerRecord, ctx: PolicyContext, now: number): Prewarm | undefined;
  /**
   * Optional: `w` has a free slot and nothing to take; labels it should unload because the fleet
   * holds more copies than demand needs. Policies without it never release copies on their own.
   */
  release?(w: WorkerRecord, ctx: PolicyContext, now: number): readonly string[];
  /**
   * Optional: how much losing `label` from `w` would cost, as a key that stays comparable across
   * time (a log). When present, the registry indexes workers by their cheapest label with it.
   */
  evictionKey?(ctx: PolicyContext, w: WorkerRecord, label: string): number;
}

/**
 * The label `w` must unload before loading `label`: undefined when it holds `label` or has a free
 * label slot; its least recently used label that no in-flight task uses and `isProtected` allows;
 * null when there is none (the worker cannot take the task without breaking a rule).
 */
export function evictionFor(
  w: WorkerRecord,
  label: string,
  registry: Registry,
  isProtected: (label: string) => boolean = () => false,
): string | undefined | null {
  // A label-free task loads nothing, so it never needs an eviction.
  if (label === NO_LABEL || w.labels.includes(label) || w.labels.length < w.labelCapacity) return undefined;
  for (let i = w.labels.length - 1; i >= 0; i--) {
    const candidate = w.labels[i]!;
    if (!registry.inUse(w, candidate) && !isProtected(candidate)) return candidate;
  }
  return null;
}

/** The oldest waiting task (global order) that `w` can run, with its eviction; label-blind. */
export function pickOldest(
  w: WorkerRecord,
  ctx: PolicyContext,
  now: number,
  isProtected?: (label: string) => boolean,
): Pick | undefined {
  for (const queued of ctx.queues.inOrder(ctx.scanLimit)) {
    if (!ctx.registry.canRun(w, queued.task, now)) continue;
    const evictLabel = evictionFor(w, queued.task.label, ctx.registry, isProtected);
    if (evictLabel !== null) return { queued, evictLabel };
  }
  return undefined;
}
