import {
  CatalogError,
  defineErrorCatalog,
  type ErrorBody as CatalogErrorBody,
} from '@smart-routing/service-kit';

/**
 * The dispatcher's error catalog: code -> HTTP status -> default message. Every HTTP error the
 * dispatcher sends (producer API and worker upgrade refusals) is `{"error": {"code", "message"}}`
 * with one of these codes; the README lists them all.
 */
export const DISPATCHER_ERRORS = {
  invalid_request: { status: 400, message: 'the request is not valid' },
  invalid_parameters_json: { status: 400, message: 'parameters_json is not valid JSON' },
  unknown_task_type: { status: 400, message: 'no worker serves this task type' },
  bad_parameters: { status: 400, message: 'the worker rejected the task parameters' },
  invalid_worker_id: { status: 400, message: 'the Worker-Id header is missing or invalid' },
  unauthorized: { status: 401, message: 'missing or invalid credentials' },
  not_found: { status: 404, message: 'no such route' },
  task_not_found: { status: 404, message: 'no task with this task_id (unknown, or its result expired)' },
  label_not_found: { status: 404, message: 'the model repository has no such label' },
  method_not_allowed: { status: 405, message: 'method not allowed on this route' },
  duplicate_task_id: { status: 409, message: 'a task with this task_id is already in flight' },
  task_cancelled: { status: 409, message: 'the task was cancelled' },
  duplicate_worker_id: { status: 409, message: 'a connected worker already has this id' },
  request_timeout: { status: 408, message: 'the request did not arrive in time' },
  payload_too_large: { status: 413, message: 'the request body is larger than the limit' },
  expectation_failed: { status: 417, message: 'the Expect header is not supported' },
  worker_quarantined: {
    status: 429,
    message: 'this peer is quarantined for flapping worker connections; retry after the cool-down',
  },
  internal: { status: 500, message: 'internal error' },
  worker_lost: { status: 502, message: 'the worker running the task was lost and the attempts are used up' },
  worker_error: { status: 502, message: 'the worker failed to run the task' },
  result_too_large: { status: 502, message: 'the worker returned a result larger than the limit' },
  uploader_unreachable: { status: 502, message: 'the uploader could not be reached' },
  queue_full: { status: 503, message: 'the task queue is full; retry later' },
  shutting_down: { status: 503, message: 'the dispatcher is shutting down' },
  too_many_connections: { status: 503, message: 'too many open connections; retry later' },
  no_capable_worker: { status: 503, message: 'no connected worker serves this task type; retry later' },
  task_store_unavailable: { status: 503, message: 'the task store did not answer; retry later' },
  uploader_not_configured: { status: 503, message: 'no uploader is configured (UPLOADER_URL)' },
  too_many_viewers: {
    status: 503,
    message: 'the live view has as many open streams as it serves; retry later',
  },
  model_server_unavailable: {
    status: 503,
    message: 'the model servers of the workers tried did not answer; retry later',
  },
  task_timeout: { status: 504, message: 'the task did not finish in time' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code from {@link DISPATCHER_ERRORS}. */
export type DispatcherErrorCode = keyof typeof DISPATCHER_ERRORS;

/** The JSON body of every error response. */
export type ErrorBody = CatalogErrorBody<DispatcherErrorCode>;

// The dispatcher's details are complete messages: they replace the catalog text.
const CATALOG = defineErrorCatalog(DISPATCHER_ERRORS, { detail: 'replace' });

/** An error with a catalog code; `message` is the catalog message, or `detail` when given. */
export class DispatcherError extends CatalogError<DispatcherErrorCode> {
  /** `retryAfterS`: seconds for a `Retry-After` header (503s). */
  constructor(code: DispatcherErrorCode, detail?: string, retryAfterS?: number) {
    super(CATALOG, code, detail, { retryAfterS });
  }
}
