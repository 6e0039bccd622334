import type { InferPath } from './infer-paths.js';
import { percentile } from './stats.js';

/**
 * The measuring half of `npm run benchmark:infer`: a closed loop of `concurrency` callers over
 * one `InferPath`, and a case that runs several paths one after the other on the same tensor and
 * reports each against a baseline path measured in the same run.
 *
 *   for each path: probe (1 call) ─ fails ─▶ "unavailable: <reason>", next path
 *                                  └ ok ──▶ warm-up calls ─▶ measured calls ─▶ tasks/s, p50, p99
 */

/** How much to measure per path. */
export interface MeasureOptions {
  /** Concurrent callers. */
  concurrency: number;
  /** Measured calls per path (ignored when `durationMs` is set). */
  requests: number;
  /** Measure for this long instead of a count. Default: by count. */
  durationMs?: number;
  /** Calls before measuring (loads the model, opens connections). Default 0. */
  warmup?: number;
  /**
   * CPU time used so far by each process of the run, ms by name; read before and after the
   * measured calls to report CPU per inference per process. Default: not measured.
   */
  cpu?: () => Promise<Record<string, number>>;
}

/** One path's numbers, or why it has none. */
export interface PathMeasurement {
  id: string;
  name: string;
  /** Concurrent callers it ran with. */
  concurrency: number;
  /** Set when the path could not be measured; then the numbers are absent. */
  unavailable?: string;
  requests?: number;
  failures?: number;
  /** The first failure's message, when some calls failed after the probe passed. */
  firstFailure?: string;
  seconds?: number;
  perSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** perSecond as a ratio of the case's baseline. */
  ratio?: number;
  /** CPU time per measured inference, microseconds, by process (see `MeasureOptions.cpu`). */
  cpuUsPerInference?: Record<string, number>;
}

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
}

/**
 * Runs `path` in a closed loop and measures it; a path whose first call fails is "unavailable".
 * `label` names the row.
 */
export async function measurePath(
  path: InferPath,
  options: MeasureOptions,
  label: { id: string; name: string },
): Promise<PathMeasurement> {
  const base = { id: label.id, name: label.name, concurrency: options.concurrency };
  try {
    await path.infer();
  } catch (err) {
    return { ...base, unavailable: reason(err) };
  }
  await loop(path, options.concurrency, options.warmup ?? 0);
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  const started = performance.now();
  const deadline = options.durationMs === undefined ? Infinity : started + options.durationMs;
  let issued = 0;
  const cpuBefore = await options.cpu?.();
  const more = (): boolean =>
    options.durationMs === undefined ? issued < options.requests : performance.now() < deadline;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (more()) {
        issued++;
        const t0 = performance.now();
        try {
          await path.infer();
        } catch (err) {
          failures++;
          firstFailure ??= reason(err);
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const done = latencies.length;
  const cpuAfter = cpuBefore && (await options.cpu?.());
  const result: PathMeasurement = {
    ...base,
    requests: done,
    failures,
    seconds,
    perSecond: (done - failures) / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
  if (firstFailure !== undefined) result.firstFailure = firstFailure;
  if (cpuBefore && cpuAfter && done > 0) {
    result.cpuUsPerInference = Object.fromEntries(
      Object.keys(cpuAfter).map((k) => [k, Math.round(((cpuAfter[k]! - (cpuBefore[k] ?? 0)) * 1000) / done)]),
    );
  }
  return result;
}

/** `count` calls by `concurrency` callers, failures ignored (warm-up). */
async function loop(path: InferPath, concurrency: number, count: number): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (left-- > 0) await path.infer().catch(() => undefined);
    }),
  );
}

/** One case: its baseline and the paths measured against it. */
export interface CaseResult {
  /** Short key, e.g. 'image-224'. */
  key: string;
  /** What it measures, for people. */
  title: string;
  /** Id of the baseline row (ratios are against it). */
  baseline: string;
  rows: PathMeasurement[];
}

/** A path to measure with its own options (a baseline may run at another concurrency). */
export interface CasePath {
  /** Its letter in the report ('a' to 'e'; 'a1' for a one-at-a-time baseline). */
  id: string;
  /** What it is, for people. */
  name: string;
  /** Creates the client; its failure makes the path "unavailable". */
  open(): Promise<InferPath>;
  options: MeasureOptions;
}

/**
 * Measures the paths in order (the first is the baseline) and fills in each one's ratio to it.
 * A path that cannot be opened or whose probe fails is reported, not thrown.
 */
export async function runCase(key: string, title: string, paths: CasePath[]): Promise<CaseResult> {
  const rows: PathMeasurement[] = [];
  for (const p of paths) {
    let path: InferPath | undefined;
    try {
      path = await p.open();
    } catch (err) {
      rows.push({ id: p.id, name: p.name, concurrency: p.options.concurrency, unavailable: reason(err) });
      continue;
    }
    try {
      rows.push(await measurePath(path, p.options, p));
    } finally {
      await path.close();
    }
  }
  const base = rows[0]?.perSecond;
  for (const r of rows) if (r.perSecond !== undefined && base) r.ratio = r.perSecond / base;
  return { key, title, baseline: rows[0]?.id ?? '', rows };
}

/** The case as text lines (a header and one line per path). */
export function formatCase(c: CaseResult): string[] {
  const lines = [`${c.title} (ratios against (${c.baseline}))`];
  for (const r of c.rows) {
    const label = `(${r.id}) ${r.name}, c=${r.concurrency}`.padEnd(52);
    if (r.unavailable !== undefined) {
      lines.push(`  ${label} unavailable: ${r.unavailable}`);
      continue;
    }
    lines.push(
      `  ${label} ${r.perSecond!.toFixed(1).padStart(8)} tasks/s  p50 ${r.p50Ms!.toFixed(1).padStart(7)} ms  p99 ${r.p99Ms!.toFixed(1).padStart(7)} ms  ${r.ratio!.toFixed(2).padStart(5)}x` +
        (r.failures ? `  failures ${r.failures} (${r.firstFailure})` : ''),
    );
    if (r.cpuUsPerInference) {
      const parts = Object.entries(r.cpuUsPerInference)
        .filter(([, us]) => us > 0)
        .map(([k, us]) => `${k} ${(us / 1000).toFixed(2)}`);
      lines.push(`      CPU ms per inference: ${parts.join(', ')}`);
    }
  }
  return lines;
}

/** One of issue 10's targets, judged on a run. */
export interface TargetCheck {
  target: string;
  /** 'n/a' when a case or path it needs was not measured. */
  verdict: 'met' | 'not met' | 'n/a';
  /** The numbers it was judged on. */
  detail: string;
}

/**
 * Issue 10's targets on the cases of a run (keys 'image-224', 'dynamic-batching', 'image-320'):
 * (d) and (e) >= 0.8x of (a) and at most 2 ms added p50 on the image model, (c) >= 0.3x, (d) and
 * (e) with dynamic batching above (a) one at a time, the 320x320 request through every path.
 */
export function checkTargets(cases: readonly CaseResult[]): TargetCheck[] {
  const row = (key: string, id: string): PathMeasurement | undefined =>
    cases.find((c) => c.key === key)?.rows.find((r) => r.id === id);
  const measured = (r: PathMeasurement | undefined): r is PathMeasurement & { ratio: number } =>
    r !== undefined && r.ratio !== undefined;
  const checks: TargetCheck[] = [];
  const judge = (
    target: string,
    rows: (PathMeasurement | undefined)[],
    ok: () => boolean,
    detail: () => string,
  ) => {
    const bad = rows.findIndex((r) => !measured(r));
    if (bad >= 0) {
      checks.push({ target, verdict: 'n/a', detail: rows[bad]?.unavailable ?? 'not measured' });
    } else {
      checks.push({ target, verdict: ok() ? 'met' : 'not met', detail: detail() });
    }
  };
  const a = row('image-224', 'a');
  for (const id of ['d', 'e']) {
    const r = row('image-224', id);
    judge(
      `(${id}) >= 0.8x (a), image 224`,
      [a, r],
      () => r!.ratio! >= 0.8,
      () => `${r!.ratio!.toFixed(2)}x`,
    );
    judge(
      `(${id}) adds <= 2 ms p50 over (a), image 224`,
      [a, r],
      () => r!.p50Ms! - a!.p50Ms! <= 2,
      () => `${(r!.p50Ms! - a!.p50Ms!).toFixed(1)} ms`,
    );
  }
  const c = row('image-224', 'c');
  judge(
    '(c) /run-task JSON >= 0.3x (a), image 224',
    [a, c],
    () => c!.ratio! >= 0.3,
    () => `${c!.ratio!.toFixed(2)}x`,
  );
  for (const id of ['d', 'e']) {
    const r = row('dynamic-batching', id);
    judge(
      `(${id}) with dynamic batching above (a) one at a time`,
      [row('dynamic-batching', 'a1'), r],
      () => r!.ratio! > 1,
      () => `${r!.ratio!.toFixed(2)}x`,
    );
  }
  const once = cases.find((k) => k.key === 'image-320');
  if (!once)
    checks.push({ target: '1x3x320x320 through every path', verdict: 'n/a', detail: 'not measured' });
  else {
    const bad = once.rows.filter((r) => r.unavailable !== undefined || (r.failures ?? 0) > 0);
    checks.push({
      target: '1x3x320x320 through every path',
      verdict: bad.length === 0 && once.rows.length === 5 ? 'met' : 'not met',
      detail:
        bad.length === 0 ? `${once.rows.length} paths ok` : `failed: ${bad.map((r) => r.id).join(', ')}`,
    });
  }
  return checks;
}
