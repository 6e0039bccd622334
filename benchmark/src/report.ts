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
    `Miss floor (fewest any online policy could have): ${r.missFloor}`,
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

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
}

/** One table, a column per policy, with affinity's ratios to random and idle-first. */
export function formatComparison(results: { live: RunResult; simulated?: SimulationResult }[]): string {
  const by = new Map(results.map((r) => [r.live.policy, r]));
  const cols = results.map((r) => r.live.policy);
  const rows: [string, (r: { live: RunResult; simulated?: SimulationResult }) => number | null][] = [
    ['label misses', (r) => r.live.labelMisses.log ?? r.live.labelMisses.metrics],
    ['misses (metrics)', (r) => r.live.labelMisses.metrics],
    ['misses (simulator)', (r) => r.simulated?.labelMisses ?? null],
    ['miss floor', (r) => r.live.missFloor],
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
    if (aff && by.has('random')) cells.push(ratioCell(get(aff), get(by.get('random')!)).padStart(width));
    if (aff && by.has('idle-first'))
      cells.push(ratioCell(get(aff), get(by.get('idle-first')!)).padStart(width));
    out.push(cells.join(' '));
  }
  return out.join('\n');
}

function ratioCell(a: number | null, b: number | null): string {
  return a === null || b === null ? 'n/a' : ratio(a, b);
}
