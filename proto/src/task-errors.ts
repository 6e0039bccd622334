/**
 * The one table of task error codes (`TaskError.code` in a `TaskResult`): what each code says
 * happened, what the dispatcher does with the task, and what its producer hears. Both sides read
 * it: the worker (log level, default message), the dispatcher's router (what the code says about
 * the worker) and its task tracker (retry or fail, with which producer status and code).
 *
 *   code ──> ran? ──> retry: fail | reroute | next_attempt ──> producer status + code
 *              │                                 (after the last attempt)
 *              └──> worker: ok | draining | blocked | label_failing   (the router's picture)
 */
import type { TaskErrorCode } from './messages.js';

/** How one task error code is handled by everyone who reads it. */
export interface TaskErrorRule {
  /**
   * The handler ran (or may have): the label was there, so the task counts as a hit or miss and
   * its run time means something.
   */
  readonly ran: boolean;
  /**
   * What the dispatcher does with the task: `fail` answers the producer; `reroute` sends it again
   * without using up an attempt (the worker never started it); `next_attempt` sends it again as
   * the next attempt, and fails it once `maxAttempts` are used up.
   */
  readonly retry: 'fail' | 'reroute' | 'next_attempt';
  /**
   * What the code says about the worker: `ok` nothing; `draining` it takes no new tasks; `blocked`
   * no tasks until its next report (full, or its model server is down); `label_failing` the label
   * is avoided on that worker for a back-off.
   */
  readonly worker: 'ok' | 'draining' | 'blocked' | 'label_failing';
  /** The HTTP status the producer gets when the task fails with this code. */
  readonly status: number;
  /** The producer's error code (in the dispatcher's catalog) when the task fails with this code. */
  readonly producerCode: string;
  /** The worker's log level for a task that ended with this code. */
  readonly logLevel: 'info' | 'warn';
  /** Default message. */
  readonly message: string;
}

/** Every {@link TaskErrorCode} and its rule (see the file header). */
export const TASK_ERROR_TABLE = {
  // Sent by no worker of ours; a peer that leaves the code out gets the safe reading.
  unspecified: {
    ran: true,
    retry: 'fail',
    worker: 'ok',
    status: 502,
    producerCode: 'worker_error',
    logLevel: 'warn',
    message: 'the worker failed without a reason',
  },
  bad_parameters: {
    ran: true,
    retry: 'fail',
    worker: 'ok',
    status: 400,
    producerCode: 'bad_parameters',
    logLevel: 'warn',
    message: 'parameters_json is not valid for this task type',
  },
  unknown_task_type: {
    ran: false,
    retry: 'fail',
    worker: 'ok',
    status: 400,
    producerCode: 'unknown_task_type',
    logLevel: 'warn',
    message: 'this worker does not serve the task type',
  },
  label_load_failed: {
    ran: false,
    retry: 'next_attempt',
    worker: 'label_failing',
    status: 502,
    producerCode: 'worker_error',
    logLevel: 'warn',
    message: 'the model server could not load the label',
  },
  label_not_found: {
    ran: false,
    retry: 'fail',
    worker: 'ok',
    status: 404,
    producerCode: 'label_not_found',
    logLevel: 'warn',
    message: 'the model repository has no such label',
  },
  inference_failed: {
    ran: true,
    retry: 'fail',
    worker: 'ok',
    status: 502,
    producerCode: 'worker_error',
    logLevel: 'warn',
    message: 'the model server failed to run the model',
  },
  internal: {
    ran: true,
    retry: 'fail',
    worker: 'ok',
    status: 502,
    producerCode: 'worker_error',
    logLevel: 'warn',
    message: 'internal worker error',
  },
  // draining and no_slot are always re-routed; their producer status is only the worker's claim.
  draining: {
    ran: false,
    retry: 'reroute',
    worker: 'draining',
    status: 503,
    producerCode: 'no_capable_worker',
    logLevel: 'info',
    message: 'the worker is draining and takes no new tasks',
  },
  no_slot: {
    ran: false,
    retry: 'reroute',
    worker: 'blocked',
    status: 503,
    producerCode: 'no_capable_worker',
    logLevel: 'info',
    message: 'all task slots of the worker are busy',
  },
  // Transient and nothing ran: 503 with Retry-After tells the producer to come back.
  model_server_unavailable: {
    ran: false,
    retry: 'next_attempt',
    worker: 'blocked',
    status: 503,
    producerCode: 'model_server_unavailable',
    logLevel: 'warn',
    message: 'the model server did not answer; retry elsewhere',
  },
  // The dispatcher asked for it (CancelTask): never sent again; its run time means nothing.
  cancelled: {
    ran: false,
    retry: 'fail',
    worker: 'ok',
    status: 409,
    producerCode: 'task_cancelled',
    logLevel: 'info',
    message: 'the task was cancelled',
  },
  // Several replicas: a paused old leader's order after a failover. Nothing ran; the sender is no
  // longer the leader and must not route it again itself (the current leader owns the task).
  stale_leader: {
    ran: false,
    retry: 'reroute',
    worker: 'ok',
    status: 503,
    producerCode: 'no_capable_worker',
    logLevel: 'info',
    message: 'sent by a replica that is no longer the leader; not run',
  },
} as const satisfies Record<TaskErrorCode, TaskErrorRule>;

/** A producer error code named in {@link TASK_ERROR_TABLE}. */
export type TaskProducerCode = (typeof TASK_ERROR_TABLE)[TaskErrorCode]['producerCode'];

/** The rule for `code`; an unknown value (a newer peer's code) reads as `unspecified`. */
export function taskErrorRule(code: TaskErrorCode): TaskErrorRule {
  return TASK_ERROR_TABLE[code] ?? TASK_ERROR_TABLE.unspecified;
}
