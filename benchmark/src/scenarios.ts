import { missFloor } from './summary.js';
import { planTraffic, type LabelDistribution, type TrafficOptions } from './traffic.js';

/**
 * Named simulator scenarios (`npm run simulate -- --scenario <name>`): fleet, traffic and model
 * costs in one object, so a table row in the README is one command and a test pins the same one.
 */

/** A fleet, its traffic and its models' costs. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly traffic: TrafficOptions;
  readonly workers: number;
  readonly labelCapacity: number;
  readonly slots: number;
  /** Load time per label, ms (one number, or per label name). */
  readonly loadMs: number | Readonly<Record<string, number>>;
  /** Run time per task, ms. */
  readonly runMs: number;
  /** Memory budget of each worker, bytes; undefined = label count only. */
  readonly memoryBudgetBytes?: number;
  /** Footprint per label name, bytes (with `memoryBudgetBytes`). */
  readonly footprintBytes?: Readonly<Record<string, number>>;
}

const MB = 1024 * 1024;

/** `label-1` ... `label-n`. */
export function labelNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `label-${i + 1}`);
}

/** Open-arrival traffic (Poisson) with one producer stream; the fleet scenarios use it. */
function open(requests: number, labels: number, labelDist: LabelDistribution, rate: number): TrafficOptions {
  return {
    requests,
    producers: 1,
    labels,
    labelDist,
    arrival: 'open',
    waitAvgS: 0,
    waitStddevS: 0,
    rate,
    seed: 1,
  };
}

/** The original's closed-loop experiment (2 producers, 2400 requests). */
function original(labels: number, waitAvgS: number): TrafficOptions {
  return {
    requests: 2400,
    producers: 2,
    labels,
    labelDist: { kind: 'uniform' },
    arrival: 'closed',
    waitAvgS,
    waitStddevS: 1.0,
    rate: 0,
    seed: 1,
  };
}

/**
 * Heterogeneous models: sizes cycle through 100 MB .. 1.6 GB (deterministic, spread over the
 * popularity ranks so that hot labels are not all small), load time proportional to size
 * (~0.28 ms per MB, so 450 ms for the 1.6 GB model, as measured for ONNX Runtime here).
 */
function heterogeneous(labels: number): {
  footprintBytes: Record<string, number>;
  loadMs: Record<string, number>;
} {
  const sizesMb = [400, 100, 1600, 200, 800, 100, 400, 1600, 200, 800];
  const footprintBytes: Record<string, number> = {};
  const loadMs: Record<string, number> = {};
  labelNames(labels).forEach((name, i) => {
    const mb = sizesMb[i % sizesMb.length]!;
    footprintBytes[name] = mb * MB;
    loadMs[name] = Math.round(mb * 0.28);
  });
  return { footprintBytes, loadMs };
}

const hetero40 = heterogeneous(40);

/** Every named scenario. */
export const SCENARIOS: Readonly<Record<string, Scenario>> = Object.freeze({
  zipf: {
    name: 'zipf',
    description: "issue 15's fleet mix: 20 labels Zipf(1.0), 4 workers x 3 labels x 2 slots, 30/s open",
    traffic: open(6000, 20, { kind: 'zipf', s: 1.0 }, 30),
    workers: 4,
    labelCapacity: 3,
    slots: 2,
    loadMs: 450,
    runMs: 30,
  },
  uniform: {
    name: 'uniform',
    description: 'the same fleet and rate, 20 labels drawn uniformly',
    traffic: open(6000, 20, { kind: 'uniform' }, 30),
    workers: 4,
    labelCapacity: 3,
    slots: 2,
    loadMs: 450,
    runMs: 30,
  },
  'over-capacity': {
    name: 'over-capacity',
    description:
      "the original's experiment over capacity: 5 labels, 2 workers x 2 labels, waits 2.5 +/- 1.0 s",
    traffic: original(5, 2.5),
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    loadMs: 450,
    runMs: 10,
  },
  'at-capacity': {
    name: 'at-capacity',
    description:
      "the original's experiment at capacity: 4 labels, 2 workers x 2 labels, waits 0.75 +/- 1.0 s",
    traffic: original(4, 0.75),
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    loadMs: 450,
    runMs: 10,
  },
  'zipf-100': {
    name: 'zipf-100',
    description: '100 labels Zipf(0.9), 16 workers x 4 labels x 2 slots, 120/s open',
    traffic: open(12000, 100, { kind: 'zipf', s: 0.9 }, 120),
    workers: 16,
    labelCapacity: 4,
    slots: 2,
    loadMs: 450,
    runMs: 30,
  },
  'zipf-steep': {
    name: 'zipf-steep',
    description: '50 labels Zipf(1.2), 8 workers x 3 labels x 2 slots, 80/s open (hot labels need replicas)',
    traffic: open(12000, 50, { kind: 'zipf', s: 1.2 }, 80),
    workers: 8,
    labelCapacity: 3,
    slots: 2,
    loadMs: 450,
    runMs: 60,
  },
  heterogeneous: {
    name: 'heterogeneous',
    description: '40 labels Zipf(1.0) of 100 MB .. 1.6 GB, 8 workers with 2 GB each x 2 slots, 60/s open',
    traffic: open(9000, 40, { kind: 'zipf', s: 1.0 }, 60),
    workers: 8,
    labelCapacity: 40,
    slots: 2,
    loadMs: hetero40.loadMs,
    runMs: 30,
    memoryBudgetBytes: 2 * 1024 * MB,
    footprintBytes: hetero40.footprintBytes,
  },
});

/**
 * A scenario's load time over its mean arrival interval (open arrival: mean load s x rate), the
 * ratio a scaled live run keeps; undefined for closed-loop scenarios.
 */
export function loadToIntervalRatio(s: Scenario): number | undefined {
  if (s.traffic.arrival !== 'open') return undefined;
  const loads = typeof s.loadMs === 'number' ? [s.loadMs] : Object.values(s.loadMs);
  return ((loads.reduce((a, b) => a + b, 0) / loads.length) * s.traffic.rate) / 1000;
}

/**
 * The open arrival rate (tasks/s) that keeps `s`'s load-to-interval ratio with loads of `loadS`
 * seconds, as a live run measures them.
 */
export function scaledRate(s: Scenario, loadS: number): number {
  const ratio = loadToIntervalRatio(s);
  if (ratio === undefined) throw new Error(`scenario ${s.name} is closed-loop: it has no rate to scale`);
  if (!(loadS > 0)) throw new RangeError(`load time must be > 0 s, got ${loadS}`);
  return ratio / loadS;
}

/** The scenario with this name; throws listing the known names otherwise. */
export function scenario(name: string): Scenario {
  const s = SCENARIOS[name];
  if (!s) throw new Error(`unknown scenario "${name}"; known: ${Object.keys(SCENARIOS).join(', ')}`);
  return s;
}

/**
 * Belady's rule with sizes: on a miss, evict the labels whose next use is farthest away until the
 * label fits in `budgetBytes`. Optimal for equal sizes (then it is {@link beladyMisses}); with
 * unequal sizes the exact optimum is NP-hard, so this is the usual reference point, not a bound.
 */
export function beladyBySizeMisses(
  sequence: readonly string[],
  budgetBytes: number,
  footprintOf: (label: string) => number,
  maxLabels = Infinity,
): number {
  const nextUse: number[] = new Array<number>(sequence.length);
  const last = new Map<string, number>();
  for (let i = sequence.length - 1; i >= 0; i--) {
    nextUse[i] = last.get(sequence[i]!) ?? Number.POSITIVE_INFINITY;
    last.set(sequence[i]!, i);
  }
  const cache = new Map<string, number>();
  let used = 0;
  let misses = 0;
  for (let i = 0; i < sequence.length; i++) {
    const label = sequence[i]!;
    if (!cache.has(label)) {
      misses++;
      const need = footprintOf(label);
      while (cache.size > 0 && (used + need > budgetBytes || cache.size >= maxLabels)) {
        let victim = '';
        let farthest = -1;
        for (const [l, n] of cache) if (n > farthest) [victim, farthest] = [l, n];
        cache.delete(victim);
        used -= footprintOf(victim);
      }
      used += need;
    }
    cache.set(label, nextUse[i]!);
  }
  return misses;
}

/** The labels of a scenario's requests in arrival order (what Belady sees). */
export function labelsInOrder(traffic: TrafficOptions): string[] {
  return planTraffic(traffic)
    .flat()
    .sort((a, b) => (traffic.arrival === 'open' ? a.atS - b.atS : a.index - b.index))
    .map((r) => r.label);
}

/**
 * The reference for a scenario's misses: with a memory budget, {@link beladyBySizeMisses} over the
 * fleet's total memory; otherwise {@link missFloor} over its total label slots.
 */
export function scenarioFloor(s: Scenario): number {
  const labels = labelsInOrder(s.traffic);
  if (s.memoryBudgetBytes !== undefined) {
    const fp = s.footprintBytes ?? {};
    return beladyBySizeMisses(
      labels,
      s.workers * s.memoryBudgetBytes,
      (l) => fp[l] ?? 0,
      s.workers * s.labelCapacity,
    );
  }
  const uniformClosed = s.traffic.labelDist.kind === 'uniform' && s.traffic.arrival === 'closed';
  return missFloor(labels, s.workers * s.labelCapacity, uniformClosed ? s.traffic.labels : undefined);
}
