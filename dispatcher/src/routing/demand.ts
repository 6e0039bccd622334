import { IndexedHeap } from './indexed-heap.js';

/** Options of {@link DemandModel}. */
export interface DemandOptions {
  /** Half-life of a request's weight in the aged rate (ms): shorter follows shifts faster. Default 30000. */
  halfLifeMs?: number;
}

/**
 * Each label's request rate, aged: every arrival adds weight 1 that decays exponentially with
 * `halfLifeMs`, so the rate follows shifts in popularity (LFU with aging). Stored in the log
 * domain relative to time 0 (`score = ln Σ e^(t_i/τ)`), which makes scores of different labels
 * comparable without touching them as time passes: a label's score changes only when it is
 * requested. The labels are also kept in a heap by score, so the hottest few are found in
 * O(k² + log n) without a scan.
 */
export class DemandModel {
  /** The half-life of a request's weight, ms. */
  readonly halfLifeMs: number;
  private readonly tau: number;
  private readonly scores = new Map<string, number>();
  /** Min-heap on -score: the hottest label first. */
  private readonly hot = new IndexedHeap<string>();

  constructor(options: DemandOptions = {}) {
    const halfLife = options.halfLifeMs ?? 30_000;
    if (!(halfLife > 0) || !Number.isFinite(halfLife)) throw new RangeError('halfLifeMs must be > 0');
    this.halfLifeMs = halfLife;
    this.tau = halfLife / Math.LN2;
  }

  /** Records one request for `label` at `now` (ms). O(log labels). */
  observe(label: string, now: number): void {
    const x = now / this.tau;
    const prev = this.scores.get(label);
    // log(e^prev + e^x), computed without overflow.
    const next = prev === undefined ? x : Math.max(prev, x) + Math.log1p(Math.exp(-Math.abs(prev - x)));
    this.scores.set(label, next);
    this.hot.set(label, -next, label);
  }

  /** Aged request rate of `label` at `now`, requests per ms (0 if never requested). */
  ratePerMs(label: string, now: number): number {
    const s = this.scores.get(label);
    return s === undefined ? 0 : Math.exp(s - now / this.tau) / this.tau;
  }

  /** Aged request count of `label` at `now`: each request weighs 1 when new, 1/2 a half-life later. */
  weight(label: string, now: number): number {
    const s = this.scores.get(label);
    return s === undefined ? 0 : Math.exp(s - now / this.tau);
  }

  /** Time-independent log score (higher = hotter); -Infinity if never requested. */
  score(label: string): number {
    return this.scores.get(label) ?? -Infinity;
  }

  /** Up to `limit` labels, hottest first. */
  *hottest(limit: number): Generator<string> {
    yield* this.hot.ascending(limit);
  }

  /** Number of labels ever requested. */
  get size(): number {
    return this.scores.size;
  }
}
