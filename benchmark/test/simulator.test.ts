import { describe, expect, it } from 'vitest';
import { simulate, type SimulationOptions } from '../src/simulator.js';
import {
  beladyBySizeMisses,
  loadToIntervalRatio,
  scaledRate,
  scenario,
  scenarioFloor,
} from '../src/scenarios.js';
import { beladyMisses, missBound } from '../src/summary.js';
import { parseLabelDistribution, planTraffic, type TrafficOptions } from '../src/traffic.js';

// The original's experiment in virtual time: loads 450 ms, run 10 ms, 2 workers x 2 label slots.
const base = (
  labels: number,
  waitAvgS: number,
  seed: number,
  arrival: 'closed' | 'open' = 'closed',
): TrafficOptions => ({
  requests: 2400,
  producers: 2,
  labels,
  labelDist: parseLabelDistribution('uniform'),
  arrival,
  waitAvgS,
  waitStddevS: 1.0,
  rate: 2 / waitAvgS,
  seed,
});
const sim = (traffic: TrafficOptions, policy: string): ReturnType<typeof simulate> => {
  const o: SimulationOptions = {
    traffic,
    policy,
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    loadMs: 450,
    runMs: 10,
  };
  return simulate(o);
};
/** The uniform closed-loop miss bound of `t` (uniform labels, closed loop, 4 label slots). */
const uniformBound = (t: TrafficOptions): number =>
  missBound(
    planTraffic(t)
      .flat()
      .sort((a, b) => a.index - b.index)
      .map((r) => r.label),
    4,
    t.labels,
  ).misses;

describe('simulate', () => {
  it('is deterministic for a seed and completes every request', () => {
    const t = base(5, 2.5, 3);
    const a = sim(t, 'affinity');
    expect(sim(t, 'affinity')).toEqual(a);
    expect(a.completed + a.rejected).toBe(2400);
    expect(a.rejected).toBe(0);
  });

  it.each([1, 2, 3])(
    'over capacity (seed %i): affinity stays within 10% of the uniform closed-loop miss bound and below half of random',
    (seed) => {
      const t = base(5, 2.5, seed);
      const aff = sim(t, 'affinity');
      const rnd = sim(t, 'random');
      const idle = sim(t, 'idle-first');
      expect(aff.labelMisses).toBeLessThanOrEqual(Math.ceil(1.1 * uniformBound(t)));
      expect(aff.labelMisses).toBeLessThan(0.5 * rnd.labelMisses);
      expect(aff.labelMisses).toBeLessThanOrEqual(idle.labelMisses);
    },
  );

  it.each([1, 2, 3])('at capacity (seed %i): affinity misses stay near the cold loads', (seed) => {
    const t = base(4, 0.75, seed);
    const aff = sim(t, 'affinity');
    const rnd = sim(t, 'random');
    expect(aff.labelMisses).toBeLessThanOrEqual(0.02 * rnd.labelMisses);
    expect(aff.labelMisses).toBeLessThanOrEqual(uniformBound(t) + 8);
  });

  it('affinity latency is well below random in closed and open arrival', () => {
    for (const arrival of ['closed', 'open'] as const) {
      const t = base(5, 2.5, 4, arrival);
      expect(sim(t, 'affinity').latencyMs.mean).toBeLessThan(0.5 * sim(t, 'random').latencyMs.mean);
    }
  });
});

// Issue 15's targets on the named scenarios (scenarios.ts), seed fixed at 1. "Today" is affinity
// as of commit 8a1d038 (LRU eviction, no replicas or memory), on this simulator once it applied
// the decisions that eviction reports return: zipf 2510 misses, mean 390.7 ms; uniform 2400
// misses (`npm run simulate -- --scenario zipf` at that commit plus the simulator fix). The
// issue's own figure (1949 misses, ~450 ms) came from the simulator before that fix.
const TODAY_ZIPF_MEAN_MS = 390.7;

const runScenario = (name: string, policy = 'affinity'): ReturnType<typeof simulate> => {
  const s = scenario(name);
  return simulate({ ...s, policy });
};

describe('simulate: issue 15 scenarios', () => {
  // Seeds 2 and 3 as well (1.58x and 1.65x); "today" is seed 1's.
  it.each([1, 2, 3])(
    'zipf (seed %i): affinity misses at most 2.0x Belady and mean latency at most 0.7x today',
    (seed) => {
      const s = scenario('zipf');
      const seeded = { ...s, traffic: { ...s.traffic, seed } };
      const r = simulate({ ...seeded, policy: 'affinity' });
      expect(r.completed).toBe(6000);
      expect(r.labelMisses).toBeLessThanOrEqual(2.0 * scenarioFloor(seeded));
      expect(r.latencyMs.mean).toBeLessThanOrEqual(0.7 * TODAY_ZIPF_MEAN_MS);
    },
  );

  // Uniform demand gives eviction no signal (every label is worth the same); the target holds
  // because loads that evict wait until their tasks have waited the eviction's price (rent or
  // buy), so several tasks share a load. Seeds 1-5 gave 1.47x .. 1.52x; 1.59x .. 1.65x before.
  it.each([1, 2, 3, 4, 5])('uniform (seed %i): affinity misses at most 1.6x Belady', (seed) => {
    const s = scenario('uniform');
    const seeded = { ...s, traffic: { ...s.traffic, seed } };
    const r = simulate({ ...seeded, policy: 'affinity' });
    expect(r.completed).toBe(6000);
    expect(r.labelMisses).toBeLessThanOrEqual(1.6 * scenarioFloor(seeded));
  });

  it('uniform: without rent or buy (rentLoadMultiple 0) the same traffic misses more', () => {
    const s = scenario('uniform');
    const withRent = simulate({ ...s, policy: 'affinity' });
    const without = simulate({ ...s, policy: 'affinity', router: { tuning: { rentLoadMultiple: 0 } } });
    expect(withRent.labelMisses).toBeLessThan(0.95 * without.labelMisses);
  });

  it("the original's presets: over capacity within 1.1x the bound, at capacity only the cold loads", () => {
    const over = runScenario('over-capacity');
    expect(over.labelMisses).toBeLessThanOrEqual(1.1 * scenarioFloor(scenario('over-capacity')));
    const at = runScenario('at-capacity');
    expect(at.labelMisses).toBe(4);
    expect(at.loads).toBe(4);
  });

  it('larger fleets (100 labels on 16 workers; steep Zipf on 8) stay within 2.1x Belady', () => {
    for (const name of ['zipf-100', 'zipf-steep']) {
      const r = runScenario(name);
      expect(r.rejected).toBe(0);
      expect(r.labelMisses, name).toBeLessThanOrEqual(2.1 * scenarioFloor(scenario(name)));
    }
  });

  it('heterogeneous sizes under memory budgets: fewer misses than idle-first, rare safety-net evictions', () => {
    const aff = runScenario('heterogeneous');
    const idle = runScenario('heterogeneous', 'idle-first');
    expect(aff.completed).toBe(9000);
    expect(aff.labelMisses).toBeLessThanOrEqual(2.0 * scenarioFloor(scenario('heterogeneous')));
    expect(aff.labelMisses).toBeLessThan(0.5 * idle.labelMisses);
    // The memory-blind baseline leaves every eviction to the worker; affinity only the few first
    // loads whose footprint was still an estimate.
    expect(idle.selfEvictions).toBeGreaterThan(0.9 * idle.evictions);
    expect(aff.selfEvictions).toBeLessThan(0.05 * aff.evictions);
  });

  it('loads labels ahead of demand only under affinity, and counts those loads', () => {
    // Memory freed by unloading several small labels leaves room that prewarming fills.
    const aff = runScenario('heterogeneous');
    expect(aff.loads).toBeGreaterThan(aff.labelMisses);
    const idle = runScenario('heterogeneous', 'idle-first');
    expect(idle.loads).toBe(idle.labelMisses);
  });
});

describe('beladyBySizeMisses', () => {
  it('equals Belady with equal sizes and evicts until a large label fits', () => {
    const seq = ['a', 'b', 'c', 'a', 'b', 'd', 'a', 'c', 'b'];
    expect(beladyBySizeMisses(seq, 2, () => 1)).toBe(beladyMisses(seq, 2));
    // Budget 3: a big label (3) pushes out both small ones.
    expect(beladyBySizeMisses(['a', 'b', 'big', 'a', 'b'], 3, (l) => (l === 'big' ? 3 : 1))).toBe(5);
  });
});

describe("scaledRate (the live benchmark's --scenario)", () => {
  it("keeps the scenario's load time / arrival interval at the measured load time", () => {
    const zipf = scenario('zipf');
    expect(loadToIntervalRatio(zipf)).toBeCloseTo(0.45 * 30, 9);
    expect(scaledRate(zipf, 0.3)).toBeCloseTo(45, 9);
    // Per-label loads: their mean.
    const het = scenario('heterogeneous');
    const loads = Object.values(het.loadMs as Record<string, number>);
    const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
    expect(scaledRate(het, 0.1)).toBeCloseTo(((mean / 1000) * 60) / 0.1, 9);
    expect(loadToIntervalRatio(scenario('over-capacity'))).toBeUndefined();
    expect(() => scaledRate(scenario('over-capacity'), 0.3)).toThrow(/closed-loop/);
    expect(() => scaledRate(zipf, 0)).toThrow(/load time/);
  });
});
