/**
 * Eviction by value, not recency alone (GreedyDual-Size-Frequency in spirit): the victim on a worker
 * is the label whose loss is expected to cost least per unit of time and memory,
 *
 *   value(L on w) = rate(L) x loadMs(L) / share(L) / size(L)
 *
 * with rate(L) the aged request rate (DemandModel), loadMs(L) its measured load time, share(L) the
 * number of copies when L has more holders than its replica target (a surplus copy is cheap), else 1,
 * and size(L) its footprint as a fraction of the worker's memory budget (1 without a budget). Never
 * evicted: a label in use, the only copy of a label with queued work, and a label within its
 * minimum residency (loaded less than `residencyLoadMultiple` x its load time ago) unless idle:
 * idle = not used since it loaded and nothing waiting for it, or its rate says it is not expected
 * again within that window (so a tail label that came and went does not hold a slot).
 */
import type { PolicyContext } from './policy.js';
import type { WorkerRecord } from './registry.js';
import { targetCopies } from './replicas.js';

/** Tuning of value-based eviction, replicas and prewarming ({@link PolicyContext.tuning}). */
export interface PlacementTuning {
  /** A label just loaded is kept for this many of its load times unless idle. Default 4. */
  readonly residencyLoadMultiple: number;
  /** Target utilisation of a label's holders' slots when sizing replica targets, (0, 1]. Default 0.6. */
  readonly replicaUtilisation: number;
  /** Most holders of one label, as a fraction of the workers (at least 1). Default 0.5. */
  readonly maxReplicaShare: number;
  /** Load labels ahead of demand on idle capacity. Default true. */
  readonly prewarm: boolean;
  /**
   * Unload copies beyond a label's replica target when demand falls: an available worker with
   * nothing to take releases an idle surplus copy (an `unload` decision). Default true.
   */
  readonly releaseSurplus: boolean;
  /**
   * Rent or buy: a label nobody holds is loaded by evicting others only once the tasks waiting
   * for it have waited, in total, this many times its load time x the victims' expected loss
   * ({@link Victims.loss}); a load into free room is never delayed. 0 loads at once. Default 1.
   */
  readonly rentLoadMultiple: number;
}

/** Defaults of {@link PlacementTuning}. */
export const DEFAULT_PLACEMENT_TUNING: PlacementTuning = Object.freeze({
  residencyLoadMultiple: 4,
  replicaUtilisation: 0.6,
  maxReplicaShare: 0.5,
  prewarm: true,
  releaseSurplus: true,
  rentLoadMultiple: 1,
});

/** Expected cost per ms of losing `label` from `w` (see the file header). Lower = better victim. */
export function labelValue(ctx: PolicyContext, w: WorkerRecord, label: string, now: number): number {
  const { registry, costs, demand } = ctx;
  const copies = Math.max(1, registry.holderCount(label));
  const share = copies > targetCopies(label, ctx, now) ? copies : 1;
  const size =
    w.memoryBudgetBytes === Infinity ? 1 : Math.max(1e-6, registry.footprint(w, label) / w.memoryBudgetBytes);
  return (demand.ratePerMs(label, now) * costs.loadMs(label)) / share / size;
}

/** Whether `label` on `w` is still within its minimum residency and not idle. */
export function isResident(ctx: PolicyContext, w: WorkerRecord, label: string, now: number): boolean {
  const loadedAt = w.loadedAt.get(label) ?? -Infinity;
  const window = ctx.tuning.residencyLoadMultiple * ctx.costs.loadMs(label);
  if (now - loadedAt >= window) return false;
  // Idle: not expected to be requested again within the window (a tail label that came and went).
  if (ctx.demand.ratePerMs(label, now) * window < 1) return false;
  const usedSince = (w.lastUsed.get(label) ?? -Infinity) > loadedAt;
  return usedSince || ctx.queues.countForLabel(label) > 0;
}

/** The only ready copy of a label that has queued work. */
export function isSoleCopyWithWork(ctx: PolicyContext, label: string): boolean {
  return ctx.registry.holderCount(label) === 1 && ctx.queues.countForLabel(label) > 0;
}

/** Added to a resident label's value: larger than any real value (rate/ms x load ms). */
export const RESIDENT_PENALTY = 1e9;

/** What `w` must unload to take `label`, and what the loss is expected to cost. */
export interface Victims {
  readonly labels: readonly string[];
  /** Sum of the victims' {@link labelValue}s, plus {@link RESIDENT_PENALTY} per resident victim. */
  readonly cost: number;
  /**
   * Sum of the victims' {@link labelValue}s alone: the requests for them expected within one load
   * time (per share and size), i.e. how much waiting the eviction pushes onto others.
   */
  readonly loss: number;
}

/**
 * The cheapest labels `w` must unload so that `label` fits (by count and by memory), cheapest
 * first; `{labels: [], cost: 0}` when it fits already; null when it cannot fit without breaking a
 * rule. `strict` false drops the sole-copy and residency protections (starvation relief);
 * `residentMayGo` lets resident labels go last (for a task that has waited a load time).
 * O(c log c) in the worker's label count c.
 */
export function victimsFor(
  ctx: PolicyContext,
  w: WorkerRecord,
  label: string,
  now: number,
  strict = true,
  residentMayGo = false,
): Victims | null {
  const { registry } = ctx;
  if (registry.fits(w, label)) return { labels: [], cost: 0, loss: 0 };
  const budget = w.memoryBudgetBytes;
  let used = budget === Infinity ? 0 : registry.usedBytes(w);
  const need = budget === Infinity ? 0 : registry.footprint(w, label);
  let count = w.labels.length;
  if (need > budget) return null;
  // w.labels is most recent first: walking it backwards and sorting stably sends ties (e.g. no
  // demand seen yet) to the least recently used, as under LRU.
  const candidates: { label: string; value: number; loss: number }[] = [];
  for (let i = w.labels.length - 1; i >= 0; i--) {
    const l = w.labels[i]!;
    if (registry.inUse(w, l)) continue;
    if (strict && isSoleCopyWithWork(ctx, l)) continue;
    const loss = labelValue(ctx, w, l, now);
    let value = loss;
    if (strict && isResident(ctx, w, l, now)) {
      // A resident label is kept for a task that just arrived (it waits, and tasks of its label
      // gather, which saves loads); for one that has waited, it goes only when nothing else can.
      if (!residentMayGo) continue;
      value += RESIDENT_PENALTY;
    }
    candidates.push({ label: l, value, loss });
  }
  if (budget === Infinity && count === w.labelCapacity) {
    // The common case, one eviction by count: the cheapest, without sorting.
    let best: { label: string; value: number; loss: number } | undefined;
    for (const c of candidates) if (!best || c.value < best.value) best = c;
    return best ? { labels: [best.label], cost: best.value, loss: best.loss } : null;
  }
  candidates.sort((a, b) => a.value - b.value);
  const out: string[] = [];
  let cost = 0;
  let loss = 0;
  for (const c of candidates) {
    if (count < w.labelCapacity && used + need <= budget) break;
    out.push(c.label);
    cost += c.value;
    loss += c.loss;
    count--;
    if (budget !== Infinity) used -= registry.footprint(w, c.label);
  }
  if (count >= w.labelCapacity || used + need > budget) return null;
  return { labels: out, cost, loss };
}

/**
 * Rent or buy (ski rental): whether the tasks waiting for `label` have waited long enough, in
 * total, to justify a load that evicts `v`. Waiting is the rent, the eviction the purchase: its
 * price is the waiting it is expected to push onto the victims' requests, `v.loss` x the load
 * time. On uniform demand every victim is worth the same, so no choice of victim saves loads; what
 * does is serving several tasks per load, and this lets them gather, more for a costly victim and
 * not at all for one nobody asks for (loss 0) or for a price below one run time. A load into free
 * room (no victims) is never delayed.
 */
export function rentPaid(ctx: PolicyContext, label: string, v: Victims, now: number): boolean {
  if (v.labels.length === 0) return true;
  const price = ctx.tuning.rentLoadMultiple * v.loss * ctx.costs.loadMs(label);
  // A price below one task's run time is paid at once: so short a wait gathers nothing, and the
  // next look at the queue (a tick, a freed slot) would cost more than it saves.
  if (price < ctx.costs.runMs(label)) return true;
  return ctx.queues.waitedMsForLabel(label, now) >= price;
}
