import type { ThreadTensor } from './session-thread.js';
import { nowNs } from './statistics.js';

/**
 * Triton's dynamic batcher for one model (one instance): concurrent requests are stacked along the
 * batch dimension into one session run and the results split back.
 *
 *   submit ─▶ queue ─▶ (instance idle?) ─▶ group: the oldest request + later ones of the same
 *                                          shape, up to max_batch_size
 *                      ├─ a preferred size can be formed, or max_batch_size reached ─▶ run now
 *                      ├─ the oldest has waited max_queue_delay_microseconds ─▶ run what there is
 *                      └─ else wait (a timer for the oldest's deadline, or the next submit)
 *   run ─▶ stack feeds ─▶ execute ─▶ split outputs by each request's batch ─▶ resolve each
 *
 * While a run is in flight the next batch forms, as with Triton's single instance, so under load
 * batches grow even with a delay of 0.
 */

/** One request's feeds (batch dimension first), the outputs it wants and its batch size. */
export interface BatchItem {
  feeds: Record<string, ThreadTensor>;
  outputs: string[];
  batch: number;
}

/** One request's results and durations (ns). */
export interface BatchResult {
  outputs: Record<string, ThreadTensor>;
  queueNs: number;
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

/** Runs the session once. */
export type Execute = (
  feeds: Record<string, ThreadTensor>,
  outputs: string[],
) => Promise<Record<string, ThreadTensor>>;

/** Options of `DynamicBatcher`. */
export interface DynamicBatcherOptions {
  /** The model's max_batch_size (> 0). */
  maxBatchSize: number;
  /** Sizes to run as soon as they can be formed. Default: none (run at max_batch_size or the delay). */
  preferredBatchSize?: number[];
  /** Longest wait for a batch to fill, in µs. Default 0. */
  maxQueueDelayMicroseconds?: number;
  execute: Execute;
  /** Called after each run with the executed batch size and its durations (ns). */
  onExecution?: (batchSize: number, inputNs: number, inferNs: number, outputNs: number) => void;
}

interface Pending extends BatchItem {
  key: string;
  enqueuedNs: number;
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
}

/** What makes requests stackable: the same inputs, types and dims after the batch dimension. */
function shapeKey(feeds: Record<string, ThreadTensor>): string {
  return Object.keys(feeds)
    .sort()
    .map((n) => `${n}:${feeds[n]!.type}:${feeds[n]!.dims.slice(1).join('x')}`)
    .join('|');
}

type Data = ThreadTensor['data'];

function stack(parts: Data[]): Data {
  if (Array.isArray(parts[0])) return (parts as string[][]).flat();
  const first = parts[0] as Exclude<Data, string[]>;
  const Ctor = first.constructor as new (n: number) => Uint8Array;
  let length = 0;
  for (const p of parts) length += (p as Uint8Array).length;
  const out = new Ctor(length);
  let at = 0;
  for (const p of parts) {
    out.set(p as Uint8Array, at);
    at += (p as Uint8Array).length;
  }
  return out;
}

function slice(data: Data, from: number, to: number): Data {
  return Array.isArray(data) ? data.slice(from, to) : (data as Uint8Array).subarray(from, to);
}

/** A dynamic batcher. Timers are unref'd and cleared on close. */
export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private closedWith: Error | undefined;
  private readonly preferred: Set<number>;
  private readonly delayNs: number;

  constructor(private readonly options: DynamicBatcherOptions) {
    this.preferred = new Set(options.preferredBatchSize ?? []);
    this.delayNs = (options.maxQueueDelayMicroseconds ?? 0) * 1000;
  }

  /** Number of requests waiting. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues a request; resolves with its own slice of the batch's results. */
  submit(item: BatchItem): Promise<BatchResult> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<BatchResult>((resolve, reject) => {
      this.queue.push({ ...item, key: shapeKey(item.feeds), enqueuedNs: nowNs(), resolve, reject });
      this.pump();
    });
  }

  /** Fails queued requests with `error` and refuses new ones; a run in flight completes. */
  close(error: Error): void {
    this.closedWith ??= error;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const p of this.queue.splice(0)) p.reject(error);
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0 || this.closedWith) return;
    const group = this.plan();
    if (!group) {
      if (!this.timer) {
        const waitMs = Math.max(0, (this.queue[0]!.enqueuedNs + this.delayNs - nowNs()) / 1e6);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, waitMs);
        this.timer.unref();
      }
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const p of group) this.queue.splice(this.queue.indexOf(p), 1);
    this.busy = true;
    void this.run(group).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  /** The group to run now, or undefined to wait for more requests. */
  private plan(): Pending[] | undefined {
    const head = this.queue[0]!;
    const group: Pending[] = [];
    let total = 0;
    let preferredCut = 0;
    for (const p of this.queue) {
      if (p.key !== head.key || total + p.batch > this.options.maxBatchSize) continue;
      group.push(p);
      total += p.batch;
      if (this.preferred.has(total)) preferredCut = group.length;
    }
    if (preferredCut > 0) return group.slice(0, preferredCut);
    if (total >= this.options.maxBatchSize) return group;
    if (nowNs() >= head.enqueuedNs + this.delayNs) return group;
    return undefined;
  }

  private async run(group: Pending[]): Promise<void> {
    const start = nowNs();
    try {
      const total = group.reduce((n, p) => n + p.batch, 0);
      const outputs = [...new Set(group.flatMap((p) => p.outputs))];
      let feeds: Record<string, ThreadTensor>;
      if (group.length === 1) {
        feeds = group[0]!.feeds;
      } else {
        feeds = {};
        for (const [name, t] of Object.entries(group[0]!.feeds)) {
          feeds[name] = {
            type: t.type,
            dims: [total, ...t.dims.slice(1)],
            data: stack(group.map((p) => p.feeds[name]!.data)),
          };
        }
      }
      const inferStart = nowNs();
      const result = await this.options.execute(feeds, outputs);
      const outputStart = nowNs();
      const split = group.map(() => ({}) as Record<string, ThreadTensor>);
      for (const name of outputs) {
        const t = result[name]!;
        if (group.length > 1 && t.dims[0] !== total) {
          throw new Error(
            `output '${name}' has no batch dimension of ${total} to split (dims [${t.dims.join(',')}])`,
          );
        }
        const per =
          total === 0 ? 0 : (Array.isArray(t.data) ? t.data.length : (t.data as Uint8Array).length) / total;
        let row = 0;
        group.forEach((p, i) => {
          if (p.outputs.includes(name)) {
            split[i]![name] =
              group.length === 1
                ? t
                : {
                    type: t.type,
                    dims: [p.batch, ...t.dims.slice(1)],
                    data: slice(t.data, row * per, (row + p.batch) * per),
                  };
          }
          row += p.batch;
        });
      }
      const end = nowNs();
      const times = {
        inputNs: inferStart - start,
        inferNs: outputStart - inferStart,
        outputNs: end - outputStart,
      };
      this.options.onExecution?.(total, times.inputNs, times.inferNs, times.outputNs);
      group.forEach((p, i) => p.resolve({ outputs: split[i]!, queueNs: start - p.enqueuedNs, ...times }));
    } catch (err) {
      for (const p of group) p.reject(err);
    }
  }
}
