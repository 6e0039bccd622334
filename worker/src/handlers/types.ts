import type { z } from 'zod';
import { TaskError } from '../errors.js';
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
   * Aborted when the dispatcher cancels the task (CancelTask): pass it to model-server calls and
   * stop early. The runner answers `cancelled` and frees the slot at once either way.
   */
  signal: AbortSignal;
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
  /** Runs the task; the result is serialised once (`JSON.stringify`) into `result_json`. */
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
