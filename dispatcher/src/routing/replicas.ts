/**
 * Replica targets for hot labels, and loading them ahead of demand.
 *
 *   target(L) = ceil(rate(L) x runMs(L) / (slots per holder x replicaUtilisation)), at least 1 for a
 *               requested label, at most max(1, maxReplicaShare x workers)
 *
 * i.e. enough holders that L's offered load keeps their slots at the target utilisation. An
 * available worker with room to spare (a free label slot and memory, or labels nobody asked for
 * in five half-lives) loads the hottest label that is below its target: so a worker that joins,
 * or re-joins a restarted dispatcher, is prewarmed with what the fleet lacks. Prewarming never
 * evicts a label with demand, so hot labels cannot push the long tail out; surplus copies are the
 * cheapest victims when demand falls (see eviction.ts), and an available worker with nothing to take
 * releases them outright once idle (`surplusCopies`: `unload` decisions), freeing memory.
 */
import type { PolicyContext } from './policy.js';
import type { WorkerRecord } from './registry.js';
import { isResident } from './eviction.js';

/** How many of the hottest labels a prewarm looks at. */
const PREWARM_SCAN = 8;

/** Holders `label` should have at `now` (0 when it was never requested). */
export function targetCopies(label: string, ctx: PolicyContext, now: number): number {
  const rate = ctx.demand.ratePerMs(label, now);
  if (rate <= 0) return 0;
  const { registry, costs, tuning } = ctx;
  const slotsPerHolder = Math.max(1, registry.holderSlots(label) / Math.max(1, registry.holderCount(label)));
  const need = Math.ceil((rate * costs.runMs(label)) / (slotsPerHolder * tuning.replicaUtilisation));
  const cap = Math.max(1, Math.floor(tuning.maxReplicaShare * registry.size));
  return Math.min(cap, Math.max(1, need));
}

/** A label `w` should load ahead of demand now, and what to unload first (labels without demand). */
export interface Prewarm {
  readonly label: string;
  readonly unload: readonly string[];
}

/** What an available worker `w` should load ahead of demand, if anything. O(PREWARM_SCAN²). */
export function prewarmFor(w: WorkerRecord, ctx: PolicyContext, now: number): Prewarm | undefined {
  if (!ctx.tuning.prewarm) return undefined;
  const { registry, demand } = ctx;
  if (demand.size === 0) return undefined;
  // Room held by labels nobody asked for in 5 half-lives (weight < 1/32 of one request), and not
  // used here either (a label announced at join counts as used then).
  const idleSince = now - 5 * demand.halfLifeMs;
  const dead = w.labels.filter(
    (l) =>
      !registry.inUse(w, l) &&
      !w.loading.has(l) &&
      demand.weight(l, now) < 1 / 32 &&
      (w.lastUsed.get(l) ?? -Infinity) < idleSince,
  );
  if (dead.length === 0 && w.labels.length >= w.labelCapacity) return undefined;
  for (const label of demand.hottest(PREWARM_SCAN)) {
    if (w.labels.includes(label) || registry.isFailing(w, label, now)) continue;
    if (registry.holderCount(label) >= targetCopies(label, ctx, now)) continue;
    if (registry.fits(w, label)) return { label, unload: [] };
    for (let k = 1; k <= dead.length; k++) {
      const unload = dead.slice(dead.length - k);
      const left = w.labels.filter((l) => !unload.includes(l));
      const used = left.reduce((sum, l) => sum + registry.footprint(w, l), 0);
      if (
        left.length < w.labelCapacity &&
        (w.memoryBudgetBytes === Infinity || used + registry.footprint(w, label) <= w.memoryBudgetBytes)
      )
        return { label, unload };
    }
  }
  return undefined;
}

/**
 * The copies on `w` beyond their labels' replica targets that are idle, to unload now: a label
 * with more holders than max(1, target), not in use or loading here, past its minimum residency,
 * with nothing queued for it, and not used here for `residencyLoadMultiple` x its load time (so a
 * copy that demand just stopped needing is not dropped between two bursts). Never the last copy.
 * O(labels on w).
 */
export function surplusCopies(w: WorkerRecord, ctx: PolicyContext, now: number): string[] {
  if (!ctx.tuning.releaseSurplus) return [];
  const { registry, costs, queues, tuning } = ctx;
  const out: string[] = [];
  for (const label of w.labels) {
    const copies = registry.holderCount(label) - out.filter((l) => l === label).length;
    if (copies <= 1 || copies <= targetCopies(label, ctx, now)) continue;
    if (registry.inUse(w, label) || w.loading.has(label) || queues.countForLabel(label) > 0) continue;
    if (isResident(ctx, w, label, now)) continue;
    const idleFor = now - (w.lastUsed.get(label) ?? -Infinity);
    if (idleFor < tuning.residencyLoadMultiple * costs.loadMs(label)) continue;
    out.push(label);
  }
  return out;
}
