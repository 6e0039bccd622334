import type { RunResult } from './run-benchmark.js';
import type { SimulationResult } from './simulator.js';

/** Plain-text reports: the original's summary lines per policy, and a side-by-side table. */

const fmt = (n: number | null | undefined, digits = 1): string =>
  n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits);

/** The original's summary lines, then ours. */
export function formatSummary(r: RunResult, sim?: SimulationResult): string {
  const misses = r.labelMisses.log ?? r.labelMisses.metrics;
  const agree =
    r.labelMisses.log === null
      ? 'no log file'
      : r.labelMisses.log === r.labelMisses.metrics
        ? 'agree'
        : 'DISAGREE';
  const lines = [
    `Total Label Misses: ${misses}`,
    `Tasks Completed: ${r.tasksCompleted}`,
    `Average Task Runtime: ${fmt(r.averageTaskRuntimeS, 4)} s`,
    `Total Requests: ${r.totalRequests}`,
    `Total Failed Requests: ${r.failedRequests}${r.failedRequests ? ` ${JSON.stringify(r.failuresByCode)}` : ''}`,
    `Total Synchronous Requests: ${r.synchronousRequests}`,
    `Total Dispatched Jobs: ${r.dispatchedJobs}`,
    `Label misses (collector log / dispatcher metrics): ${r.labelMisses.log ?? 'n/a'} / ${r.labelMisses.metrics} (${agree})`,
    formatMissBound(r),
    `Simulator's misses on the same traffic: ${sim ? sim.labelMisses : 'n/a'}${sim && misses > 0 ? ` (live/sim ${fmt(misses / Math.max(1, sim.labelMisses), 2)})` : ''}`,
    `End-to-end latency ms: mean ${fmt(r.latencyMs.mean)} p50 ${fmt(r.latencyMs.p50)} p95 ${fmt(r.latencyMs.p95)} p99 ${fmt(r.latencyMs.p99)}`,
    `Evictions: ${r.evictions}`,
    `Mean load time per label ms: ${
      Object.entries(r.loadMsByLabel)
        .map(([l, ms]) => `${l} ${fmt(ms)}`)
        .join(', ') || 'n/a'
    }`,
    `Load time / mean arrival interval (this run's loads): ${fmt(r.loadToIntervalRatio, 3)} (original: 0.36 over capacity, 1.2 at capacity)`,
    `Wall time: ${fmt(r.wallS)} s`,
  ];
  return lines.join('\n');
}

/** Explains the reference misses are held against, naming the bound (never "floor"). */
export function formatMissBound(r: Pick<RunResult, 'missBound'>): string {
  const b = r.missBound;
  const what =
    b.kind === 'uniform-closed-loop'
      ? 'expected misses of any online policy on uniform labels: the cold loads + (1 - label slots / labels) of the requests; a run can come in under it by chance'
      : 'the fleet as one cache, planned order; no policy serving in arrival order reaches it, one that reorders queued tasks can pass it';
  return `Miss bound, ${b.name}: ${b.misses} (${what})`;
}

/** The comparison table's row for the bound: its name when every run has the same kind. */
function boundRowName(results: { live: RunResult }[]): string {
  const kinds = new Set(results.map((r) => r.live.missBound.kind));
  if (kinds.size !== 1) return 'miss bound';
  return kinds.has('belady') ? 'Belady optimum' : 'uniform bound (exp.)';
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
}

/**
 * One table, a column per policy, with affinity's ratios to random and idle-first, then a line
 * naming the miss bound.
 */
export function formatComparison(results: { live: RunResult; simulated?: SimulationResult }[]): string {
  const by = new Map(results.map((r) => [r.live.policy, r]));
  const boundRow = boundRowName(results);
  const cols = results.map((r) => r.live.policy);
  const rows: [string, (r: { live: RunResult; simulated?: SimulationResult }) => number | null][] = [
    ['label misses', (r) => r.live.labelMisses.log ?? r.live.labelMisses.metrics],
    ['misses (metrics)', (r) => r.live.labelMisses.metrics],
    ['misses (simulator)', (r) => r.simulated?.labelMisses ?? null],
    [boundRow, (r) => r.live.missBound.misses],
    ['tasks completed', (r) => r.live.tasksCompleted],
    ['failed requests', (r) => r.live.failedRequests],
    ['evictions', (r) => r.live.evictions],
    [
      'avg task runtime ms',
      (r) => (r.live.averageTaskRuntimeS === null ? null : r.live.averageTaskRuntimeS * 1000),
    ],
    ['latency mean ms', (r) => r.live.latencyMs.mean],
    ['latency p50 ms', (r) => r.live.latencyMs.p50],
    ['latency p95 ms', (r) => r.live.latencyMs.p95],
    ['latency p99 ms', (r) => r.live.latencyMs.p99],
    ['mean load ms', (r) => r.live.meanLoadMs],
    ['load/interval', (r) => r.live.loadToIntervalRatio],
  ];
  const width = 14;
  const head = ['metric'.padEnd(22), ...cols.map((c) => c.padStart(width))];
  const aff = by.get('affinity');
  if (aff && by.has('random')) head.push('aff/random'.padStart(width));
  if (aff && by.has('idle-first')) head.push('aff/idle-first'.padStart(width));
  const out = [head.join(' ')];
  for (const [name, get] of rows) {
    const cells = [
      name.padEnd(22),
      ...results.map((r) =>
        fmt(get(r), name.includes('ms') ? 1 : name.includes('/') ? 3 : 0).padStart(width),
      ),
    ];
    // The bound is the traffic's, the same for every policy: no ratio.
    const rate = (other: string): string =>
      (name === boundRow ? '' : ratioCell(get(aff!), get(by.get(other)!))).padStart(width);
    if (aff && by.has('random')) cells.push(rate('random'));
    if (aff && by.has('idle-first')) cells.push(rate('idle-first'));
    out.push(cells.join(' '));
  }
  // Every policy saw the same traffic, so one bound (planned order) serves the whole table.
  if (results[0]) out.push(formatMissBound(results[0].live));
  return out.join('\n');
}

function ratioCell(a: number | null, b: number | null): string {
  return a === null || b === null ? 'n/a' : ratio(a, b);
}
