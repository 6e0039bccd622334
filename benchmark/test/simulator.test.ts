import { describe, expect, it } from 'vitest';
import { simulate, type SimulationOptions } from '../src/simulator.js';
import { missFloor } from '../src/summary.js';
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
const floor = (t: TrafficOptions): number =>
  missFloor(
    planTraffic(t)
      .flat()
      .sort((a, b) => a.index - b.index)
      .map((r) => r.label),
    4,
    t.labels,
  );

describe('simulate', () => {
  it('is deterministic for a seed and completes every request', () => {
    const t = base(5, 2.5, 3);
    const a = sim(t, 'affinity');
    expect(sim(t, 'affinity')).toEqual(a);
    expect(a.completed + a.rejected).toBe(2400);
    expect(a.rejected).toBe(0);
  });

  it.each([1, 2, 3])(
    'over capacity (seed %i): affinity stays near the miss floor and far below random',
    (seed) => {
      const t = base(5, 2.5, seed);
      const aff = sim(t, 'affinity');
      const rnd = sim(t, 'random');
      const idle = sim(t, 'idle-first');
      expect(aff.labelMisses).toBeLessThanOrEqual(Math.ceil(1.1 * floor(t)));
      expect(aff.labelMisses).toBeLessThan(0.5 * rnd.labelMisses);
      expect(aff.labelMisses).toBeLessThanOrEqual(idle.labelMisses);
    },
  );

  it.each([1, 2, 3])('at capacity (seed %i): affinity misses stay near the cold loads', (seed) => {
    const t = base(4, 0.75, seed);
    const aff = sim(t, 'affinity');
    const rnd = sim(t, 'random');
    expect(aff.labelMisses).toBeLessThanOrEqual(0.02 * rnd.labelMisses);
    expect(aff.labelMisses).toBeLessThanOrEqual(floor(t) + 8);
  });

  it('affinity latency is well below random in closed and open arrival', () => {
    for (const arrival of ['closed', 'open'] as const) {
      const t = base(5, 2.5, 4, arrival);
      expect(sim(t, 'affinity').latencyMs.mean).toBeLessThan(0.5 * sim(t, 'random').latencyMs.mean);
    }
  });
});
