/**
 * The committed comparison results (benchmark/results/*.json written by `npm run benchmark --
 * --compare --out ...`) in the shape the benchmark writes today: each live run names its miss bound
 * as `missBound` {kind, misses, name}. Files from before the rename carried a bare `missFloor`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MISS_BOUND_NAMES } from '../src/summary.js';

const DIR = join(import.meta.dirname, '..', 'results');

interface ComparisonFile {
  traffic: { labelDist: { kind: string }; arrival: string };
  results: { live: Record<string, unknown> }[];
}

const files = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();
const comparisons: [string, ComparisonFile][] = [];
for (const f of files) {
  const data = JSON.parse(await readFile(join(DIR, f), 'utf8')) as Partial<ComparisonFile>;
  if (Array.isArray(data.results) && data.results.every((r) => r && typeof r === 'object' && 'live' in r))
    comparisons.push([f, data as ComparisonFile]);
}

describe('benchmark/results comparison files', () => {
  it('include the comparison runs the README quotes', () => {
    expect(comparisons.map(([f]) => f)).toEqual(
      expect.arrayContaining(['at-capacity.json', 'over-capacity.json', 'quick.json']),
    );
  });

  it.each(comparisons)(
    '%s: every live run has missBound {kind, misses, name} and no missFloor',
    (_f, data) => {
      // The bound the benchmark picks for this traffic (run-benchmark.ts).
      const kind =
        data.traffic.labelDist.kind === 'uniform' && data.traffic.arrival === 'closed'
          ? 'uniform-closed-loop'
          : 'belady';
      for (const { live } of data.results) {
        expect(live).not.toHaveProperty('missFloor');
        expect(live.missBound).toEqual({ kind, misses: expect.any(Number), name: MISS_BOUND_NAMES[kind] });
      }
    },
  );
});
