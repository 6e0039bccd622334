/** Small statistics helpers for benchmark summaries. */

/** Percentile by nearest rank (p in 0..100) of unsorted values; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Arithmetic mean; NaN when empty. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

export function summariseLatency(valuesMs: readonly number[]): LatencySummary {
  return {
    mean: mean(valuesMs),
    p50: percentile(valuesMs, 50),
    p95: percentile(valuesMs, 95),
    p99: percentile(valuesMs, 99),
  };
}
