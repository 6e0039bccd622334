import { summariseLogFile, missBound, promSum, type LogSummary, type MissBound } from './summary.js';
import { summariseLatency, type LatencySummary } from './stats.js';
import { produce, type RequestOutcome } from './producer.js';
import { startStack, type Stack } from './stack.js';
import type { PlannedRequest, TrafficOptions } from './traffic.js';
import { planTraffic } from './traffic.js';

/** Settings of one benchmark run (one policy). */
export interface RunSettings {
  traffic: TrafficOptions;
  policy: string;
  workers: number;
  labelCapacity: number;
  slots: number;
  /** Memory budget of every worker, bytes (see StackOptions.memoryBudgetBytes). Default none. */
  memoryBudgetBytes?: number;
  modelRepository: string;
  /** Target an already running dispatcher instead of starting a stack. */
  dispatcherUrl?: string;
  /**
   * A stack started for this run by the caller (so several can start at once): used instead of
   * starting one, and closed by the run once its requests are done, before its log is read.
   * Ignored with `dispatcherUrl`. [none: the run starts its own]
   */
  stack?: Promise<Stack>;
  /** With dispatcherUrl: the collector file to summarise, if known. */
  logFile?: string;
  logDir: string;
  onProgress?: (o: RequestOutcome) => void;
  /** Called as the run enters each phase, for progress output. [none] */
  onPhase?: (phase: RunPhase) => void;
  /** Share of requests sent through POST /send-task + polling, 0..1 [0]. */
  asyncFraction?: number;
}

/** The phases of one run, in order. */
export type RunPhase = 'starting stack' | 'sending requests' | 'stopping stack' | 'reading logs';

/** Everything one run measured. */
export interface RunResult {
  policy: string;
  totalRequests: number;
  tasksCompleted: number;
  failedRequests: number;
  failuresByCode: Record<string, number>;
  /** Requests sent to POST /run-task (the original's "Total Synchronous Requests"). */
  synchronousRequests: number;
  /** Async tasks accepted by POST /send-task (202; the original's "Total Dispatched Jobs"). */
  dispatchedJobs: number;
  labelMisses: { log: number | null; metrics: number };
  labelHits: number;
  evictions: number;
  averageTaskRuntimeS: number | null;
  /** Handler run time alone, ms. */
  meanRunMs: number | null;
  latencyMs: LatencySummary;
  loadMsByLabel: Record<string, number>;
  meanLoadMs: number | null;
  /** The reference for its misses, named for what it is (never a floor the run cannot cross). */
  missBound: MissBound;
  /** Measured mean load time over the mean arrival interval (closed loop: wait / producers). */
  loadToIntervalRatio: number | null;
  wallS: number;
  logFile?: string;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  return res.text();
}

/** Runs one policy over the traffic plan and summarises it. */
export async function runBenchmark(s: RunSettings): Promise<RunResult> {
  const plan = planTraffic(s.traffic);
  if (!s.dispatcherUrl && !s.stack) s.onPhase?.('starting stack');
  const stack = s.dispatcherUrl
    ? undefined
    : await (s.stack ??
        startStack({
          modelRepository: s.modelRepository,
          workers: s.workers,
          labelCapacity: s.labelCapacity,
          slots: s.slots,
          memoryBudgetBytes: s.memoryBudgetBytes,
          policy: s.policy,
          logDir: s.logDir,
          runId: `${s.policy}-${Date.now()}`,
          logLevel: 'info',
        }));
  const dispatcherUrl = s.dispatcherUrl ?? stack!.dispatcherUrl;
  let outcomes: RequestOutcome[];
  let before: string;
  let after: string;
  const started = performance.now();
  try {
    before = await scrape(dispatcherUrl);
    s.onPhase?.('sending requests');
    outcomes = await produce(plan, {
      dispatcherUrl,
      taskType: 'embed_texts',
      parameters: (r: PlannedRequest) => JSON.stringify({ texts: [`request ${r.index} for ${r.label}`] }),
      runId: `bench-${s.policy}-${s.traffic.seed}-${Date.now()}`,
      arrival: s.traffic.arrival,
      onDone: s.onProgress,
      asyncFraction: s.asyncFraction ?? 0,
    });
    after = await scrape(dispatcherUrl);
  } finally {
    if (stack) s.onPhase?.('stopping stack');
    await stack?.close();
  }
  const wallS = (performance.now() - started) / 1000;
  const delta = (name: string, filter?: Record<string, string>): number =>
    promSum(after, name, filter) - promSum(before, name, filter);
  const logFile = stack?.logFile ?? s.logFile;
  let log: LogSummary | undefined;
  if (logFile) {
    s.onPhase?.('reading logs');
    log = await summariseLogFile(logFile);
  }

  const failures = outcomes.filter((o) => o.status !== 200);
  const failuresByCode: Record<string, number> = {};
  for (const f of failures) {
    const code = f.errorCode?.startsWith('transport_error') ? 'transport_error' : (f.errorCode ?? 'unknown');
    failuresByCode[code] = (failuresByCode[code] ?? 0) + 1;
  }
  const labelsInOrder = plan
    .flat()
    .sort((a, b) => a.index - b.index)
    .map((r) => r.label);
  return {
    policy: s.policy,
    totalRequests: outcomes.length,
    tasksCompleted: outcomes.length - failures.length,
    failedRequests: failures.length,
    failuresByCode,
    synchronousRequests: outcomes.filter((o) => o.mode === 'sync').length,
    dispatchedJobs: outcomes.filter((o) => o.mode === 'async' && o.accepted).length,
    labelMisses: { log: log ? log.labelMisses : null, metrics: delta('smart_routing_label_misses_total') },
    labelHits: delta('smart_routing_label_hits_total'),
    evictions: log ? log.evictions : delta('smart_routing_label_evictions_total'),
    averageTaskRuntimeS: log ? log.averageTaskRuntimeS : null,
    meanRunMs: log && Number.isFinite(log.meanRunMs) ? log.meanRunMs : null,
    latencyMs: summariseLatency(outcomes.map((o) => o.latencyMs)),
    loadMsByLabel: log?.loadMsByLabel ?? {},
    meanLoadMs: log && Number.isFinite(log.meanLoadMs) ? log.meanLoadMs : null,
    missBound: missBound(
      labelsInOrder,
      s.workers * s.labelCapacity,
      s.traffic.labelDist.kind === 'uniform' && s.traffic.arrival === 'closed' ? s.traffic.labels : undefined,
    ),
    loadToIntervalRatio: loadToInterval(log?.meanLoadMs, s.traffic),
    wallS,
    logFile,
  };
}

/** Load time over the mean time between arrivals: closed loop wait / producers, open loop 1 / rate. */
function loadToInterval(meanLoadMs: number | undefined, t: TrafficOptions): number | null {
  if (meanLoadMs === undefined || !Number.isFinite(meanLoadMs)) return null;
  const intervalS = t.arrival === 'closed' ? t.waitAvgS / t.producers : 1 / t.rate;
  return intervalS > 0 ? meanLoadMs / 1000 / intervalS : null;
}
