import { TASK_ERROR_TABLE, type TaskErrorCode } from '@smart-routing/proto';

/** A `TaskError` code the worker can send (every code of the proto's table but `unspecified`). */
export type WorkerTaskErrorCode = Exclude<TaskErrorCode, 'unspecified'>;

/**
 * The worker's view of the task error table (`TASK_ERROR_TABLE` in @smart-routing/proto, which
 * the dispatcher reads too): every code it sends, with the HTTP status the producer gets for it
 * and a default message.
 */
export const TASK_ERRORS: Readonly<Record<WorkerTaskErrorCode, { status: number; message: string }>> =
  Object.freeze(
    Object.fromEntries(
      Object.entries(TASK_ERROR_TABLE)
        .filter(([code]) => code !== 'unspecified')
        .map(([code, rule]) => [code, { status: rule.status, message: rule.message }]),
    ) as Record<WorkerTaskErrorCode, { status: number; message: string }>,
  );

/** The log level for a task that ended with `code` (success: `info`). */
export function taskLogLevel(code: TaskErrorCode | undefined): 'info' | 'warn' {
  return code === undefined ? 'info' : (TASK_ERROR_TABLE[code]?.logLevel ?? 'warn');
}

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
