/**
 * The producer's answer to POST /run-task: the JSON text for a completed task (the worker's
 * result spliced in as it came) or for a failed one (the catalog error body).
 */
import { DISPATCHER_ERRORS, DispatcherError, type DispatcherErrorCode } from './errors.js';
import type { TaskRecord } from './task-store/task-store.js';

/** A task a worker completed, as the producer hears of it. */
export interface CompletedTask {
  readonly taskId: string;
  readonly workerId: string;
  /** The producer's label (also for a task routed label-free). */
  readonly label: string;
  readonly labelMiss: boolean;
  readonly loadMs: number;
  readonly runMs: number;
  /** Tries it took (1 = first). */
  readonly attempts: number;
  /** The worker's result, one JSON document (checked with {@link isJsonDocument}). */
  readonly resultJson: string;
}

/**
 * A `kserve_infer` task a worker completed: the model server's response body as it came
 * (Triton's binary layout: `headerLength` bytes of JSON, then the binary tensors), never parsed.
 */
export interface CompletedInfer extends Omit<CompletedTask, 'resultJson'> {
  readonly body: Uint8Array;
  /** Bytes of JSON header at the start of `body`; 0 means the whole body is JSON. */
  readonly headerLength: number;
}

/** How a task ended, for the producer: a JSON result (/run-task), an infer body (/v2), or an error. */
export type TaskOutcome =
  | { readonly ok: true; readonly completed: CompletedTask }
  | { readonly ok: true; readonly inferred: CompletedInfer }
  | { readonly ok: false; readonly error: DispatcherError };

/**
 * Whether `text` is one JSON document. The worker's result is spliced into the answer unparsed,
 * so it must be checked: V8's native `JSON.parse` is the check (its tree is dropped at once); what
 * the splice saves is serialising the tree again.
 */
export function isJsonDocument(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// JSON.stringify turns NaN / Infinity into null, as the answer always did.
const num = (n: number): string => JSON.stringify(n);

/**
 * The 200 answer's text:
 * `{"task_id","status":"completed","worker_id","label","label_miss","load_ms","run_ms","attempts","result"}`,
 * with `result` the worker's `result_json` text as it arrived (never parsed and re-serialised).
 */
export function completedAnswer(c: CompletedTask): string {
  return (
    `{"task_id":${JSON.stringify(c.taskId)},"status":"completed",` +
    `"worker_id":${JSON.stringify(c.workerId)},"label":${JSON.stringify(c.label)},` +
    `"label_miss":${c.labelMiss ? 'true' : 'false'},"load_ms":${num(c.loadMs)},"run_ms":${num(c.runMs)},` +
    `"attempts":${num(c.attempts)},"result":${c.resultJson}}`
  );
}

/**
 * What a stored record says of the run that ended it, for an answer built from the store (its load
 * and run times are not stored: 0).
 */
export function storedRun(record: TaskRecord): Omit<CompletedTask, 'resultJson'> {
  return {
    taskId: record.taskId,
    workerId: record.workerId ?? '',
    label: record.label,
    labelMiss: record.labelMiss ?? false,
    loadMs: 0,
    runMs: 0,
    attempts: Math.max(1, record.attempts),
  };
}

/**
 * The producer's answer for a task record that ended (as if the task had just finished here):
 * `completed` gives its stored result, any other end its stored catalog error (an unknown code is
 * `worker_error`). `messageOf` words the error's message [the stored message].
 */
export function storedOutcome(
  record: TaskRecord,
  messageOf: (record: TaskRecord) => string | undefined = (r) => r.error?.message,
): TaskOutcome {
  if (record.status === 'completed')
    return { ok: true, completed: { ...storedRun(record), resultJson: record.resultJson ?? 'null' } };
  const code = record.error?.code ?? 'worker_error';
  const known = code in DISPATCHER_ERRORS ? (code as DispatcherErrorCode) : 'worker_error';
  return { ok: false, error: new DispatcherError(known, messageOf(record)) };
}
