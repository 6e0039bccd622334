import {
  LabelCache,
  Router,
  seededRandom,
  type Decision,
  type PolicyName,
  type RouterOptions,
} from '@smart-routing/dispatcher/routing';
import { summariseLatency, type LatencySummary } from './stats.js';
import { planTraffic, type PlannedRequest, type TrafficOptions } from './traffic.js';

/**
 * A discrete-event simulation of a whole run: the dispatcher's real routing core (`Router`) with a
 * virtual clock, modelled workers (load and run times from options) and the same traffic plan as
 * the live benchmark. Deterministic for a given seed; a 2400-request run takes milliseconds.
 *
 *   producers ──submit──> Router ──send──> SimWorker: [evict] [load loadMs] run runMs
 *        ^                  ^                         │
 *        └──── next after ──┴──── taskFinished <──────┘   (labelEvent loaded after the load)
 */

export interface SimulationOptions {
  traffic: TrafficOptions;
  policy: string;
  workers: number;
  labelCapacity: number;
  slots: number;
  /** Load time, ms: one number for every label, or per label. */
  loadMs: number | Readonly<Record<string, number>>;
  /** Handler run time, ms. */
  runMs: number;
  /** How often the dispatcher re-examines waiting tasks, ms (the live dispatcher's tick). Default 20. */
  tickMs?: number;
  /** Memory budget of each worker, bytes. Default: none (label count only). */
  memoryBudgetBytes?: number;
  /** Footprint per label, bytes (with `memoryBudgetBytes`); labels not named weigh 0. */
  footprintBytes?: Readonly<Record<string, number>>;
  /** More router options (tuning, demand half-life, fairness); policy and random are set here. */
  router?: Omit<RouterOptions, 'policy' | 'random'>;
}

export interface SimulationResult {
  policy: string;
  labelMisses: number;
  completed: number;
  rejected: number;
  evictions: number;
  /** Loads started, for tasks and ahead of demand (`load` orders). */
  loads: number;
  /**
   * Evictions the worker made on its own because the dispatcher's order did not make room (its
   * safety net): 0 when the router's picture of capacity, memory included, is right.
   */
  selfEvictions: number;
  latencyMs: LatencySummary;
  /** Virtual duration of the run, s. */
  virtualS: number;
}

/** A modelled worker: the real worker's label rules (LabelCache) plus when each load completes. */
interface SimWorker {
  id: string;
  labels: LabelCache;
  /** Label -> virtual time its load completes (for tasks that arrive mid-load). */
  readyAt: Map<string, number>;
}

type SimEvent =
  | { at: number; seq: number; kind: 'submit'; req: PlannedRequest }
  | {
      at: number;
      seq: number;
      kind: 'finish';
      workerId: string;
      req: PlannedRequest;
      miss: boolean;
      loadMs: number;
    }
  | { at: number; seq: number; kind: 'loaded'; workerId: string; label: string; loadMs: number }
  | { at: number; seq: number; kind: 'tick' };

type NewEvent = SimEvent extends unknown
  ? SimEvent extends infer E
    ? E extends SimEvent
      ? Omit<E, 'seq'>
      : never
    : never
  : never;

/** A binary min-heap of events by (time, sequence). */
class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(e: NewEvent): void {
    const ev = { ...e, seq: this.seq++ } as SimEvent;
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Runs the simulation to the last request. */
export function simulate(o: SimulationOptions): SimulationResult {
  const router = new Router({
    ...o.router,
    policy: o.policy as PolicyName,
    random: seededRandom(o.traffic.seed + 1),
  });
  const plan = planTraffic(o.traffic);
  const tickMs = o.tickMs ?? 20;
  const footprintOf = (label: string): number => o.footprintBytes?.[label] ?? 0;
  const loadFor = (label: string): number =>
    typeof o.loadMs === 'number' ? o.loadMs : (o.loadMs[label] ?? 0);
  const events = new EventQueue();
  const workers = new Map<string, SimWorker>();
  const byTask = new Map<string, PlannedRequest>();
  const submittedAt = new Map<string, number>();
  const nextOf = new Map<number, PlannedRequest | undefined>();
  const latencies: number[] = [];
  let misses = 0;
  let completed = 0;
  let rejected = 0;
  let evictions = 0;
  let loads = 0;
  let selfEvictions = 0;
  let tickPending = false;
  let now = 0;

  for (const requests of plan) {
    requests.forEach((r, i) => nextOf.set(r.index, requests[i + 1]));
    if (o.traffic.arrival === 'closed') {
      if (requests[0]) events.push({ at: 0, kind: 'submit', req: requests[0] });
    } else {
      for (const r of requests) events.push({ at: r.atS * 1000, kind: 'submit', req: r });
    }
  }

  // Declared before use: eviction reports can free capacity, so their decisions are applied too.
  let apply: (decisions: Decision[]) => void = () => undefined;
  const evicted = (w: SimWorker, labels: string[]): void => {
    for (const label of labels) {
      w.readyAt.delete(label);
      evictions++;
      apply(router.labelEvent(now, w.id, { kind: 'evicted', label, loadedLabels: w.labels.labels }));
    }
  };
  const startLoad = (w: SimWorker, label: string): number => {
    const loadMs = loadFor(label);
    w.readyAt.set(label, now + loadMs);
    events.push({ at: now + loadMs, kind: 'loaded', workerId: w.id, label, loadMs });
    loads++;
    return loadMs;
  };

  const afterRequest = (req: PlannedRequest): void => {
    if (o.traffic.arrival !== 'closed') return;
    const next = nextOf.get(req.index);
    if (next) events.push({ at: now + req.waitAfterS * 1000, kind: 'submit', req: next });
  };

  apply = (decisions: Decision[]): void => {
    for (const d of decisions) {
      if (d.type === 'send') {
        const w = workers.get(d.workerId)!;
        const req = byTask.get(d.taskId)!;
        const use = w.labels.use(d.label, d.evictLabel);
        selfEvictions += use.evicted.filter((l) => l !== d.evictLabel).length;
        evicted(w, use.evicted);
        const loadMs = use.miss ? startLoad(w, d.label) : 0;
        const start = Math.max(now, w.readyAt.get(d.label) ?? now);
        events.push({ at: start + o.runMs, kind: 'finish', workerId: w.id, req, miss: use.miss, loadMs });
      } else if (d.type === 'reject') {
        rejected++;
        const req = byTask.get(d.taskId)!;
        byTask.delete(d.taskId);
        afterRequest(req);
      } else if (d.type === 'load') {
        const w = workers.get(d.workerId)!;
        if (!w.labels.has(d.label)) {
          const use = w.labels.use(d.label);
          selfEvictions += use.evicted.length;
          evicted(w, use.evicted);
          startLoad(w, d.label);
        }
      } else if (d.type === 'unload') {
        const w = workers.get(d.workerId)!;
        if (w.labels.evict(d.label)) evicted(w, [d.label]);
      }
    }
    if (!tickPending && router.queuedCount > 0) {
      tickPending = true;
      events.push({ at: now + tickMs, kind: 'tick' });
    }
  };

  for (let i = 0; i < o.workers; i++) {
    const w: SimWorker = {
      id: `sim-${i + 1}`,
      labels: new LabelCache(o.labelCapacity, [], {
        memoryBudgetBytes: o.memoryBudgetBytes,
        footprintBytes: footprintOf,
      }),
      readyAt: new Map(),
    };
    workers.set(w.id, w);
    apply(
      router.addWorker(0, {
        id: w.id,
        labelCapacity: o.labelCapacity,
        taskSlots: o.slots,
        loadedLabels: [],
        taskTypes: ['embed_texts'],
        memoryBudgetBytes: o.memoryBudgetBytes,
      }),
    );
  }

  for (let ev = events.pop(); ev; ev = events.pop()) {
    now = ev.at;
    switch (ev.kind) {
      case 'submit': {
        const id = `r${ev.req.index}`;
        byTask.set(id, ev.req);
        submittedAt.set(id, now);
        apply(router.submit(now, { id, label: ev.req.label, taskType: 'embed_texts' }));
        break;
      }
      case 'loaded': {
        const w = workers.get(ev.workerId)!;
        if (w.labels.has(ev.label))
          apply(
            router.labelEvent(now, w.id, {
              kind: 'loaded',
              label: ev.label,
              durationMs: ev.loadMs,
              loadedLabels: w.labels.labels,
              footprintBytes: footprintOf(ev.label),
            }),
          );
        break;
      }
      case 'finish': {
        const id = `r${ev.req.index}`;
        if (ev.miss) misses++;
        completed++;
        latencies.push(now - submittedAt.get(id)!);
        byTask.delete(id);
        const w = workers.get(ev.workerId)!;
        apply(
          router.taskFinished(now, w.id, id, {
            labelMiss: ev.miss,
            loadMs: ev.loadMs,
            runMs: o.runMs,
            loadedLabels: w.labels.labels,
          }),
        );
        afterRequest(ev.req);
        break;
      }
      case 'tick':
        tickPending = false;
        apply(router.tick(now));
        break;
    }
  }

  return {
    policy: o.policy,
    labelMisses: misses,
    completed,
    rejected,
    evictions,
    loads,
    selfEvictions,
    latencyMs: summariseLatency(latencies),
    virtualS: now / 1000,
  };
}
