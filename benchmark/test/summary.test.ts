import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  beladyMisses,
  missBound,
  missFloor,
  MISS_BOUND_NAMES,
  promSum,
  summariseLogFile,
} from '../src/summary.js';
import { percentile, summariseLatency } from '../src/stats.js';
import { parseLabelDistribution, planTraffic } from '../src/traffic.js';

describe('summariseLogFile', () => {
  it('counts misses, completions, failures, evictions and load times from a fixture log', async () => {
    const s = await summariseLogFile(fileURLToPath(new URL('./fixtures/collector.log', import.meta.url)));
    expect(s.labelMisses).toBe(3);
    expect(s.tasksCompleted).toBe(3);
    expect(s.tasksFailed).toBe(1);
    expect(s.evictions).toBe(1);
    // runtime includes the load on a miss, as the original measured it
    expect(s.averageTaskRuntimeS).toBeCloseTo((100 + 400 + 50 + 150 + 600 + 0 + 500) / 4 / 1000, 10);
    expect(s.meanRunMs).toBeCloseTo(75, 10);
    expect(s.loadMsByLabel).toEqual({ 'label-1': 450, 'label-2': 600 });
    expect(s.meanLoadMs).toBeCloseTo(500, 10);
  });
});

describe('missFloor', () => {
  it('is the cold loads plus the uncovered share for uniform labels', () => {
    const seq = Array.from({ length: 2400 }, (_, i) => `label-${(i % 5) + 1}`);
    expect(missFloor(seq, 4, 5)).toBe(5 + 480);
    expect(
      missFloor(
        seq.map((l) => (l === 'label-5' ? 'label-1' : l)),
        4,
        4,
      ),
    ).toBe(4);
  });

  it('uses Belady for skewed traffic', () => {
    expect(beladyMisses(['a', 'b', 'c', 'a', 'b', 'c'], 2)).toBe(4);
    expect(beladyMisses(['a', 'a', 'a'], 1)).toBe(1);
    expect(missFloor(['a', 'b', 'a', 'c', 'a'], 2, undefined)).toBe(3);
  });
});

describe('stats', () => {
  it('takes nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(summariseLatency([1, 2, 3, 4])).toEqual({ mean: 2.5, p50: 2, p95: 4, p99: 4 });
  });
});

describe('promSum', () => {
  it('sums samples of one metric across label sets, optionally filtered', () => {
    const text = [
      '# HELP smart_routing_tasks_total x',
      'smart_routing_tasks_total{outcome="completed"} 7',
      'smart_routing_tasks_total{outcome="failed"} 2',
      'smart_routing_tasks_total_extra 100',
      'smart_routing_label_misses_total 3',
    ].join('\n');
    expect(promSum(text, 'smart_routing_tasks_total')).toBe(9);
    expect(promSum(text, 'smart_routing_tasks_total', { outcome: 'failed' })).toBe(2);
    expect(promSum(text, 'smart_routing_label_misses_total')).toBe(3);
  });
});

describe('planTraffic', () => {
  const base = {
    requests: 100,
    producers: 2,
    labels: 5,
    labelDist: parseLabelDistribution('uniform'),
    arrival: 'closed' as const,
    waitAvgS: 1,
    waitStddevS: 1,
    rate: 10,
    seed: 7,
  };
  it('is identical for the same seed and different for another', () => {
    expect(planTraffic(base)).toEqual(planTraffic(base));
    expect(planTraffic({ ...base, seed: 8 })).not.toEqual(planTraffic(base));
  });
  it('floors waits at zero and spreads requests over producers', () => {
    const plan = planTraffic(base);
    expect(plan.map((p) => p.length)).toEqual([50, 50]);
    expect(plan.flat().every((r) => r.waitAfterS >= 0)).toBe(true);
    expect(plan.flat().some((r) => r.waitAfterS === 0)).toBe(true);
  });
  it('skews labels under zipf and rejects bad distributions', () => {
    const plan = planTraffic({
      ...base,
      requests: 2000,
      labelDist: parseLabelDistribution('zipf:1.5'),
    }).flat();
    const first = plan.filter((r) => r.label === 'label-1').length;
    const last = plan.filter((r) => r.label === 'label-5').length;
    expect(first).toBeGreaterThan(3 * last);
    expect(() => parseLabelDistribution('zipf')).toThrow(/zipf:<s>/);
  });
  it('open loop arrival times increase at about the given rate', () => {
    const plan = planTraffic({ ...base, arrival: 'open', requests: 1000, producers: 1, rate: 50 }).flat();
    const last = plan[plan.length - 1]!.atS;
    expect(last).toBeGreaterThan(1000 / 50 / 1.3);
    expect(last).toBeLessThan((1000 / 50) * 1.3);
  });
});

describe('missBound', () => {
  it('names the uniform closed-loop bound for what it is: an expectation', () => {
    const seq = Array.from({ length: 2400 }, (_, i) => `label-${(i % 5) + 1}`);
    expect(missBound(seq, 4, 5)).toEqual({
      kind: 'uniform-closed-loop',
      misses: 485,
      name: 'uniform closed-loop bound (expected)',
    });
  });

  it("names Belady's offline optimum for any other traffic", () => {
    expect(missBound(['a', 'b', 'a', 'c', 'a'], 2, undefined)).toEqual({
      kind: 'belady',
      misses: 3,
      name: "Belady's offline optimum",
    });
  });

  it('calls neither a floor', () => {
    for (const name of Object.values(MISS_BOUND_NAMES)) expect(name).not.toMatch(/floor/i);
  });
});
