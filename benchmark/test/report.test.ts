import { describe, expect, it } from 'vitest';
import { formatComparison, formatMissBound, formatSummary } from '../src/report.js';
import type { RunResult } from '../src/run-benchmark.js';
import { missBound } from '../src/summary.js';

function run(policy: string, misses: number, bound: RunResult['missBound']): RunResult {
  return {
    policy,
    totalRequests: 100,
    tasksCompleted: 100,
    failedRequests: 0,
    failuresByCode: {},
    synchronousRequests: 100,
    dispatchedJobs: 0,
    labelMisses: { log: misses, metrics: misses },
    labelHits: 100 - misses,
    evictions: misses - 4,
    averageTaskRuntimeS: 0.02,
    meanRunMs: 5,
    latencyMs: { mean: 20, p50: 15, p95: 40, p99: 60 },
    loadMsByLabel: { 'label-1': 20 },
    meanLoadMs: 20,
    missBound: bound,
    loadToIntervalRatio: 0.4,
    wallS: 10,
  };
}

const uniform = missBound(
  Array.from({ length: 100 }, (_, i) => `label-${(i % 5) + 1}`),
  4,
  5,
);
const belady = missBound(['a', 'b', 'c', 'a', 'b', 'c'], 2, undefined);

describe('formatMissBound', () => {
  it('names the uniform closed-loop bound as an expectation a run can pass by chance', () => {
    expect(formatMissBound({ missBound: uniform })).toBe(
      'Miss bound, uniform closed-loop bound (expected): 25 (expected misses of any online policy on uniform labels: ' +
        'the cold loads + (1 - label slots / labels) of the requests; a run can come in under it by chance)',
    );
  });

  it("names Belady's offline optimum and who can pass it", () => {
    expect(formatMissBound({ missBound: belady })).toMatch(
      /^Miss bound, Belady's offline optimum: 4 \(the fleet as one cache, planned order; .*reorders queued tasks can pass it\)$/,
    );
  });
});

describe('formatSummary', () => {
  it('prints the bound by its name, never as a floor', () => {
    const text = formatSummary(run('affinity', 24, uniform));
    expect(text).toContain('Miss bound, uniform closed-loop bound (expected): 25');
    expect(text).not.toMatch(/floor/i);
  });
});

describe('formatComparison', () => {
  it("names the bound's row by its kind, gives it no ratio, and explains it under the table", () => {
    const table = formatComparison([
      { live: run('random', 60, uniform) },
      { live: run('idle-first', 40, uniform) },
      { live: run('affinity', 24, uniform) },
    ]);
    expect(table).not.toMatch(/floor/i);
    const row = table.split('\n').find((l) => l.startsWith('uniform bound (exp.)'))!;
    expect(row.trim().split(/\s+/).slice(-3)).toEqual(['25', '25', '25']);
    expect(table.split('\n').find((l) => l.startsWith('label misses'))).toMatch(/0\.40x\s+0\.60x$/);
    expect(table.split('\n').at(-1)).toBe(formatMissBound({ missBound: uniform }));

    const skewed = formatComparison([
      { live: run('random', 5, belady) },
      { live: run('affinity', 4, belady) },
    ]);
    expect(skewed).toMatch(/^Belady optimum\s+4\s+4\s*$/m);
  });
});
