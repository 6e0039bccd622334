import type { z } from 'zod';
import { TaskError } from '../errors.js';
import type { InferBody } from '../infer-transport.js';
import type { TritonClient } from '../triton-client.js';
import type { ModelCache } from './model-cache.js';

/** What a handler may use while it runs one task. */
export interface HandlerContext {
  taskId: string;
  /** The label the task names (loaded by the time a label-bound handler runs). */
  label: string;
  /** The model server; undefined in `none` mode (only label-free handlers run then). */
  client: TritonClient | undefined;
  /** Per-label metadata, config and tokenizer, read once per load. */
  models: ModelCache;
  /**
   * The task's `RunTask.infer_request` with its `infer_header_length` (a `kserve_infer` body),
   * untouched; undefined when the task carries none.
   */
  inferRequest?: InferBody;
  /** The task's deadline (ms since the epoch; 0: none): pass it to `client.infer`. */
  deadlineUnixMs?: number;
  /**
   * Aborted when the dispatcher cancels the task (CancelTask): pass it to model-server calls and
   * stop early. The runner answers `cancelled` and frees the slot at once either way.
   */
  signal: AbortSignal;
}

/**
 * A handler's binary answer: sent as `TaskResult.infer_response` + `infer_header_length`, bytes
 * untouched (not serialised into `result_json`). `headerLength` bytes of JSON, then binary tensors;
 * 0 = the body is all JSON.
 */
export interface BinaryTaskResult {
  kind: 'binary';
  body: Uint8Array;
  headerLength: number;
}

/** A `BinaryTaskResult` for `body`. */
export function binaryTaskResult(body: Uint8Array, headerLength: number): BinaryTaskResult {
  return { kind: 'binary', body, headerLength };
}

/** True for a handler result that is a `BinaryTaskResult` (bytes, not a JSON value). */
export function isBinaryTaskResult(value: unknown): value is BinaryTaskResult {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'binary' &&
    (value as { body?: unknown }).body instanceof Uint8Array &&
    Number.isSafeInteger((value as { headerLength?: unknown }).headerLength)
  );
}

/**
 * One task type: the built-in ones, or a custom one given to `startWorker({ taskHandlers })`.
 * `parse` runs before any label is loaded, so bad parameters never cost a load; both steps throw
 * `TaskError` for a failure the producer should hear about (anything else becomes `internal`).
 */
export interface TaskHandler<P = unknown> {
  /** The `task_type` it serves; unique per worker. */
  readonly taskType: string;
  /**
   * Runs without a model, like `echo`: announced in `Hello.label_free_task_types`, and a RunTask
   * for it ignores `label` and `evict_label` (no unload, no load, never a miss). Without a model
   * server (TRITON_URL=none) only label-free handlers are served, and their labels are bookkeeping.
   */
  readonly labelFree: boolean;
  /** Validates `parameters_json`, already parsed once by the worker; throws `TaskError('bad_parameters')`. */
  parse(parameters: unknown): P;
  /**
   * Runs the task; the result is serialised once (`JSON.stringify`) into `result_json`, or, a
   * `BinaryTaskResult`, sent as `infer_response` bytes.
   */
  run(parameters: P, context: HandlerContext): Promise<unknown>;
}

/** Parses with a zod schema; the first issue becomes a `bad_parameters` message naming the field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, taskType: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : 'parameters';
  throw new TaskError('bad_parameters', `${taskType}: ${where}: ${issue.message}`);
}
