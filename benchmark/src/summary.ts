import { readFile } from 'node:fs/promises';
import { mean } from './stats.js';

/**
 * What a run did, computed from the log collector's JSON Lines file alone (the worker logs every
 * label miss and every completed task), plus the miss bound for the traffic it saw.
 */

/** Summary of one run's worker logs. */
export interface LogSummary {
  labelMisses: number;
  tasksCompleted: number;
  tasksFailed: number;
  /** Mean time a task spent on its worker, its label's load included (the original's measure), seconds. */
  averageTaskRuntimeS: number;
  evictions: number;
  /** Mean handler run time alone (load excluded), ms: the simulator's run-time model. */
  meanRunMs: number;
  /** Mean measured load time per label, ms (from label_miss records). */
  loadMsByLabel: Record<string, number>;
  /** Mean load time over all misses, ms. */
  meanLoadMs: number;
}

interface LogRecord {
  event?: string;
  label?: string;
  load_ms?: number;
  runtime_ms?: number;
  ok?: boolean;
  label_miss?: boolean;
}

/** Summarises records (already parsed). Unknown events are ignored. */
export function summariseRecords(records: Iterable<LogRecord>): LogSummary {
  let labelMisses = 0;
  let tasksCompleted = 0;
  let tasksFailed = 0;
  let evictions = 0;
  const runtimes: number[] = [];
  const runs: number[] = [];
  const loads = new Map<string, number[]>();
  for (const r of records) {
    switch (r.event) {
      case 'label_miss': {
        labelMisses++;
        if (r.label !== undefined && typeof r.load_ms === 'number') {
          const list = loads.get(r.label) ?? [];
          list.push(r.load_ms);
          loads.set(r.label, list);
        }
        break;
      }
      case 'task_completed':
        if (r.ok === false) tasksFailed++;
        else tasksCompleted++;
        if (typeof r.runtime_ms === 'number') runs.push(r.runtime_ms);
        if (typeof r.runtime_ms === 'number')
          runtimes.push(r.runtime_ms + (r.label_miss && typeof r.load_ms === 'number' ? r.load_ms : 0));
        break;
      case 'label_evicted':
        evictions++;
        break;
      default:
        break;
    }
  }
  const loadMsByLabel: Record<string, number> = {};
  for (const [label, list] of [...loads].sort(([a], [b]) => a.localeCompare(b)))
    loadMsByLabel[label] = mean(list);
  return {
    labelMisses,
    tasksCompleted,
    tasksFailed,
    averageTaskRuntimeS: runtimes.length ? mean(runtimes) / 1000 : 0,
    evictions,
    meanRunMs: mean(runs),
    loadMsByLabel,
    meanLoadMs: mean([...loads.values()].flat()),
  };
}

/** Parses JSON Lines text; lines that are not JSON objects are skipped. */
export function parseJsonLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value && typeof value === 'object' && !Array.isArray(value)) out.push(value as LogRecord);
    } catch {
      // a torn last line while the collector is still writing: skip it
    }
  }
  return out;
}

/** Reads and summarises a collector file. */
export async function summariseLogFile(path: string): Promise<LogSummary> {
  return summariseRecords(parseJsonLines(await readFile(path, 'utf8')));
}

/**
 * The reference a run's misses are held against, named for what it is (neither is a floor a live
 * run cannot cross):
 * - `uniform-closed-loop`: uniform labels in a closed loop. Each next label is independent of what
 *   the fleet holds, so any online policy misses, in expectation, the cold loads (one per distinct
 *   label) plus (1 - label slots / labels) of the requests. An expectation: a run can come in a
 *   little under it by chance.
 * - `belady`: any other traffic. Belady's offline optimum (evict the label used farthest in the
 *   future) with the whole fleet as one cache of its label slots, over the planned request order.
 *   No online policy serving in that order reaches it; one that holds tasks back and reorders them
 *   (affinity's label queues) can, so it is a reference, not a floor either.
 */
export interface MissBound {
  kind: 'uniform-closed-loop' | 'belady';
  /** Misses of the bound. */
  misses: number;
  /** Its name in reports, e.g. "uniform closed-loop bound (expected)". */
  name: string;
}

/** Names of each {@link MissBound} kind, as the reports print them. */
export const MISS_BOUND_NAMES: Readonly<Record<MissBound['kind'], string>> = Object.freeze({
  'uniform-closed-loop': 'uniform closed-loop bound (expected)',
  belady: "Belady's offline optimum",
});

/**
 * The miss bound for a run's traffic: the uniform closed-loop bound when `uniformLabels` is given
 * (uniform labels, closed loop), else Belady's offline optimum over `labelsInOrder`.
 */
export function missBound(
  labelsInOrder: readonly string[],
  totalLabelSlots: number,
  uniformLabels: number | undefined,
): MissBound {
  const kind = uniformLabels !== undefined ? 'uniform-closed-loop' : 'belady';
  return {
    kind,
    misses: missFloor(labelsInOrder, totalLabelSlots, uniformLabels),
    name: MISS_BOUND_NAMES[kind],
  };
}

/**
 * The misses of {@link missBound} alone. Uniform labels: the cold loads (one per distinct label)
 * plus (1 - slots/labels) of the requests when positive (an expectation). Other distributions:
 * Belady's offline optimum with the whole fleet as one cache of `slots` labels.
 */
export function missFloor(
  labelsInOrder: readonly string[],
  totalLabelSlots: number,
  uniformLabels: number | undefined,
): number {
  const distinct = new Set(labelsInOrder).size;
  if (uniformLabels !== undefined) {
    const steady = Math.max(0, 1 - totalLabelSlots / uniformLabels) * labelsInOrder.length;
    return Math.round(distinct + steady);
  }
  return beladyMisses(labelsInOrder, totalLabelSlots);
}

/** Belady's MIN: evict the label whose next use is farthest away. */
export function beladyMisses(sequence: readonly string[], capacity: number): number {
  const nextUse: number[] = new Array<number>(sequence.length);
  const last = new Map<string, number>();
  for (let i = sequence.length - 1; i >= 0; i--) {
    nextUse[i] = last.get(sequence[i]!) ?? Number.POSITIVE_INFINITY;
    last.set(sequence[i]!, i);
  }
  const cache = new Map<string, number>(); // label -> its next use
  let misses = 0;
  for (let i = 0; i < sequence.length; i++) {
    const label = sequence[i]!;
    if (!cache.has(label)) {
      misses++;
      if (cache.size >= capacity) {
        let victim = '';
        let farthest = -1;
        for (const [l, n] of cache) if (n > farthest) [victim, farthest] = [l, n];
        cache.delete(victim);
      }
    }
    cache.set(label, nextUse[i]!);
  }
  return misses;
}

/** Sums every sample of a Prometheus metric (all label sets) in exposition text. */
export function promSum(text: string, name: string, filter?: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (filter) {
      const labels = m[2] ?? '';
      if (!Object.entries(filter).every(([k, v]) => labels.includes(`${k}="${v}"`))) continue;
    }
    total += Number(m[3]);
  }
  return total;
}
