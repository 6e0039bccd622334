import type { LabelEvent } from '@smart-routing/proto';
import type { WorkerInfo } from '../routing/types.js';

/** What happened in the fleet, as the live view lists it. */
export type FleetEventKind = 'joined' | 'left' | 'loaded' | 'evicted' | 'load_failed';

/** One entry of the live view's event feed. */
export interface FleetEvent {
  /** Increasing per feed, from 1. */
  readonly seq: number;
  /** Unix time, ms. */
  readonly at: number;
  readonly kind: FleetEventKind;
  readonly workerId: string;
  /** The label loaded, evicted or failed (load events only). */
  readonly label?: string;
  /** Measured load time, ms (`loaded` only, when the worker reported it). */
  readonly durationMs?: number;
  /** Why a worker left or a load failed, as reported (cut to 200 characters). */
  readonly detail?: string;
}

/** Loads and evictions per time bucket, oldest bucket first (the last one is still filling). */
export interface FleetSeries {
  readonly bucketMs: number;
  /** Unix time (ms) at which the first bucket starts. */
  readonly startsAt: number;
  readonly loads: number[];
  readonly evictions: number[];
}

/** Options of {@link FleetFeed}. */
export interface FleetFeedOptions {
  /** Events kept for a newly connected view [200]. */
  readonly capacity?: number;
  /** Width of one chart bucket, ms [10000]. */
  readonly bucketMs?: number;
  /** Buckets kept (the charts' time span is bucketMs x buckets) [30, i.e. 5 minutes]. */
  readonly buckets?: number;
  /** Clock, unix ms [Date.now]. */
  readonly now?: () => number;
}

const MAX_DETAIL = 200;

/**
 * The dispatcher's recent fleet events (workers joining and leaving; labels loaded, evicted or
 * failing to load) in a bounded ring, with per-bucket load and eviction counts for the charts.
 * It is fed by the worker endpoint's events and read by the live view; it holds no sockets.
 */
export class FleetFeed {
  private readonly capacity: number;
  private readonly bucketMs: number;
  private readonly bucketCount: number;
  private readonly now: () => number;
  private readonly ring: FleetEvent[] = [];
  private readonly listeners = new Set<(event: FleetEvent) => void>();
  /** Bucket index (unix ms / bucketMs) -> [loads, evictions]. */
  private readonly counts = new Map<number, [number, number]>();
  private seq = 0;

  constructor(options: FleetFeedOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 200);
    this.bucketMs = Math.max(1, options.bucketMs ?? 10_000);
    this.bucketCount = Math.max(1, options.buckets ?? 30);
    this.now = options.now ?? Date.now;
  }

  /** A worker's Hello was accepted. */
  workerJoined(info: WorkerInfo): void {
    this.record({ kind: 'joined', workerId: info.id });
  }

  /** A worker's connection ended. */
  workerLeft(workerId: string, reason: string): void {
    this.record({ kind: 'left', workerId, detail: reason });
  }

  /** A worker's LabelEvent (`unspecified` ones are not listed). */
  labelEvent(workerId: string, event: LabelEvent): void {
    if (event.kind === 'unspecified') return;
    this.record({
      kind: event.kind,
      workerId,
      label: event.label,
      durationMs: event.kind === 'loaded' && event.durationMs > 0 ? event.durationMs : undefined,
      detail: event.kind === 'load_failed' && event.message ? event.message : undefined,
    });
  }

  /** The kept events, oldest first. */
  recent(): FleetEvent[] {
    return [...this.ring];
  }

  /** Loads and evictions per bucket over the kept span, ending with the current bucket. */
  series(): FleetSeries {
    const current = Math.floor(this.now() / this.bucketMs);
    const first = current - this.bucketCount + 1;
    const loads: number[] = [];
    const evictions: number[] = [];
    for (let b = first; b <= current; b++) {
      const c = this.counts.get(b);
      loads.push(c?.[0] ?? 0);
      evictions.push(c?.[1] ?? 0);
    }
    return { bucketMs: this.bucketMs, startsAt: first * this.bucketMs, loads, evictions };
  }

  /** Calls `listener` with every new event; returns the unsubscribe function. */
  subscribe(listener: (event: FleetEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(fields: Omit<FleetEvent, 'seq' | 'at'>): void {
    const at = this.now();
    const event: FleetEvent = {
      seq: ++this.seq,
      at,
      ...fields,
      ...(fields.detail !== undefined ? { detail: fields.detail.slice(0, MAX_DETAIL) } : {}),
    };
    this.ring.push(event);
    if (this.ring.length > this.capacity) this.ring.shift();
    if (event.kind === 'loaded' || event.kind === 'evicted') this.count(at, event.kind === 'loaded' ? 0 : 1);
    for (const listener of this.listeners) {
      // A failing view must not break the worker endpoint that feeds us.
      try {
        listener(event);
      } catch {
        this.listeners.delete(listener);
      }
    }
  }

  private count(at: number, which: 0 | 1): void {
    const bucket = Math.floor(at / this.bucketMs);
    let c = this.counts.get(bucket);
    if (!c) {
      this.counts.set(bucket, (c = [0, 0]));
      // Drop buckets that fell out of the span (the map never holds more than `buckets` + 1).
      for (const old of this.counts.keys()) if (old <= bucket - this.bucketCount) this.counts.delete(old);
    }
    c[which]++;
  }
}
