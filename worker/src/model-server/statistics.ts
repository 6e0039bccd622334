/**
 * Per-model counters of Triton's statistics extension (`GET /v2/models/{m}/stats`), kept the way
 * Triton reports them (the statistics extension document of the triton-inference-server/server repository):
 *
 * - `inference_count`: successful inferences, each batch element counted (a request of batch 4 adds 4);
 * - `execution_count`: model executions (one ONNX Runtime run, however many requests it stacked);
 * - `success` / `fail`: requests and their cumulative duration, from the body read to the response built;
 * - `queue`: time requests waited for the dynamic batcher (0 per request without batching);
 * - `compute_input`: preparing the session's feeds (validation, conversion, stacking);
 * - `compute_infer`: the session run (incl. the hop to its thread);
 * - `compute_output`: turning results into the response (splitting a batch, encoding);
 * - `batch_stats`: the compute durations per execution, by executed batch size.
 * Durations are nanoseconds, counts and sums plain JSON numbers.
 */

/** A count and a cumulative duration in ns. */
export interface StatDuration {
  count: number;
  ns: number;
}

interface BatchStat {
  compute_input: StatDuration;
  compute_infer: StatDuration;
  compute_output: StatDuration;
}

/** The durations of one request, in ns. */
export interface RequestTimes {
  totalNs: number;
  queueNs: number;
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

const zero = (): StatDuration => ({ count: 0, ns: 0 });
const add = (d: StatDuration, ns: number): void => {
  d.count++;
  d.ns += ns;
};

/** The statistics of one loaded model version. */
export class ModelStatistics {
  private inferenceCount = 0;
  private executionCount = 0;
  private lastInference = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInput = zero();
  private readonly computeInfer = zero();
  private readonly computeOutput = zero();
  private readonly batches = new Map<number, BatchStat>();

  /** A request that succeeded; `batchSize` is 1 for a model that does not batch. */
  recordSuccess(batchSize: number, t: RequestTimes): void {
    this.inferenceCount += batchSize;
    this.lastInference = Date.now();
    add(this.success, t.totalNs);
    add(this.queue, t.queueNs);
    add(this.computeInput, t.inputNs);
    add(this.computeInfer, t.inferNs);
    add(this.computeOutput, t.outputNs);
  }

  /** A request that failed (bad input, runtime error, response too large). */
  recordFailure(totalNs: number): void {
    add(this.fail, totalNs);
  }

  /** One model execution of `batchSize` (the stacked size) and its compute durations. */
  recordExecution(batchSize: number, inputNs: number, inferNs: number, outputNs: number): void {
    this.executionCount++;
    let b = this.batches.get(batchSize);
    if (!b) {
      b = { compute_input: zero(), compute_infer: zero(), compute_output: zero() };
      this.batches.set(batchSize, b);
    }
    add(b.compute_input, inputNs);
    add(b.compute_infer, inferNs);
    add(b.compute_output, outputNs);
  }

  /** One `model_stats` entry in Triton's JSON form. */
  toJson(name: string, version: string): object {
    return {
      name,
      version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: zero(),
        cache_miss: zero(),
      },
      response_stats: {},
      batch_stats: [...this.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([batch_size, s]) => ({
          batch_size,
          compute_input: { ...s.compute_input },
          compute_infer: { ...s.compute_infer },
          compute_output: { ...s.compute_output },
        })),
      memory_usage: [],
    };
  }
}

/** Nanoseconds since an arbitrary origin (monotonic). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}
