import { seededRandom } from '@smart-routing/dispatcher';

/**
 * Deterministic traffic: for a seed, the same labels and the same waits in the same order, so two
 * policies (or the live run and the simulator) see identical traffic.
 */

/** Standard normal sample (Box-Muller). */
export function normal(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** How labels are drawn: `uniform`, or Zipf with exponent s (`zipf:1.1`). */
export type LabelDistribution = { kind: 'uniform' } | { kind: 'zipf'; s: number };

/** Parses `uniform` or `zipf:<s>`; throws with the offending text otherwise. */
export function parseLabelDistribution(text: string): LabelDistribution {
  if (text === 'uniform') return { kind: 'uniform' };
  const m = /^zipf:(\d+(?:\.\d+)?)$/.exec(text);
  if (m) return { kind: 'zipf', s: Number(m[1]) };
  throw new Error(`--label-dist must be "uniform" or "zipf:<s>", got "${text}"`);
}

/** Returns a sampler of label indexes 0..labels-1. */
export function labelSampler(labels: number, dist: LabelDistribution, rng: () => number): () => number {
  if (dist.kind === 'uniform') return () => Math.min(labels - 1, Math.floor(rng() * labels));
  const weights = Array.from({ length: labels }, (_, i) => 1 / (i + 1) ** dist.s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w / total));
  return () => {
    const r = rng();
    const i = cdf.findIndex((c) => r < c);
    return i === -1 ? labels - 1 : i;
  };
}

/** Traffic settings shared by the live benchmark and the simulator. */
export interface TrafficOptions {
  requests: number;
  producers: number;
  labels: number;
  /** Label names; default `label-1` ... `label-N`. */
  labelNames?: string[];
  labelDist: LabelDistribution;
  /** Closed: each producer sends, waits for the reply, then sleeps a wait. Open: Poisson arrivals. */
  arrival: 'closed' | 'open';
  /** Mean and standard deviation of a closed-loop producer's wait, seconds (normal, floored at 0). */
  waitAvgS: number;
  waitStddevS: number;
  /** Open loop arrival rate, tasks per second. */
  rate: number;
  seed: number;
}

/** One request of the plan. */
export interface PlannedRequest {
  index: number;
  producer: number;
  label: string;
  /** Closed loop: seconds to sleep after this request's reply. Open loop: 0. */
  waitAfterS: number;
  /** Open loop: seconds after the start at which to send. Closed loop: 0. */
  atS: number;
}

/** The whole traffic plan, per producer in send order. */
export function planTraffic(o: TrafficOptions): PlannedRequest[][] {
  const rng = seededRandom(o.seed);
  const nextLabel = labelSampler(o.labels, o.labelDist, rng);
  const names = o.labelNames ?? Array.from({ length: o.labels }, (_, i) => `label-${i + 1}`);
  const plan: PlannedRequest[][] = Array.from({ length: o.producers }, () => []);
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    const producer = i % o.producers;
    const label = names[nextLabel()]!;
    const wait = Math.max(0, o.waitAvgS + o.waitStddevS * normal(rng));
    if (o.arrival === 'open') t += -Math.log(1 - rng()) / o.rate;
    plan[producer]!.push({
      index: i,
      producer,
      label,
      waitAfterS: o.arrival === 'closed' ? wait : 0,
      atS: o.arrival === 'open' ? t : 0,
    });
  }
  return plan;
}
