import type { TaskErrorCode } from '@smart-routing/proto';

/**
 * The worker's error catalog: every `TaskError` code it sends in a `TaskResult`, with the HTTP
 * status the dispatcher maps it to and a default message. One place, so the dispatcher's table, the
 * README and this file can be checked against each other.
 */
export const TASK_ERRORS = {
  bad_parameters: { status: 400, message: 'parameters_json is not valid for this task type' },
  unknown_task_type: { status: 400, message: 'this worker does not serve the task type' },
  label_load_failed: { status: 502, message: 'the model server could not load the label' },
  label_not_found: { status: 404, message: 'the model repository has no such label' },
  inference_failed: { status: 502, message: 'the model server failed to run the model' },
  internal: { status: 502, message: 'internal worker error' },
  draining: { status: 503, message: 'the worker is draining and takes no new tasks' },
  no_slot: { status: 503, message: 'all task slots of the worker are busy' },
  model_server_unavailable: { status: 503, message: 'the model server did not answer; retry elsewhere' },
} as const satisfies Record<Exclude<TaskErrorCode, 'unspecified'>, { status: number; message: string }>;

/** A `TaskError` code the worker can send. */
export type WorkerTaskErrorCode = keyof typeof TASK_ERRORS;

/** A task failed in a way the producer should hear about; becomes `TaskResult.error`. */
export class TaskError extends Error {
  override name = 'TaskError';
  /** The wire code (`bad_parameters`, `label_not_found`, ...). */
  readonly code: WorkerTaskErrorCode;

  constructor(
    code: WorkerTaskErrorCode,
    message: string = TASK_ERRORS[code].message,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The TaskError for a failed model-server call: `model_server_unavailable` (retryable elsewhere)
 * when the server could not be reached, else `code`.
 */
export function modelServerFailure(
  err: unknown,
  code: 'inference_failed' | 'label_load_failed',
  message: string,
): TaskError {
  const unreachable = err instanceof Error && err.name === 'ModelServerUnreachableError';
  return new TaskError(unreachable ? 'model_server_unavailable' : code, message, { cause: err });
}

/** A call did not finish in time (see `withTimeout`). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Runs `fn` with an `AbortSignal` that fires after `timeoutMs`; rejects with a `TimeoutError`
 * (naming `what`) when the time is up, whether or not `fn` honours the signal. The one timeout
 * helper of the worker.
 */
export async function withTimeout<T>(
  what: string,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(`${what} timed out after ${timeoutMs} ms`, timeoutMs);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([fn(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
