/**
 * Where accepted tasks live until their result has been kept long enough (issue 12). One small
 * interface, three stores chosen by `TASK_STORE`: `memory` (tests, throwaway runs), a SQLite file
 * (the embedded default, WAL mode) and `redis://...` (fleets). Every method is async so the three
 * are interchangeable; a store never decides routing, it only remembers.
 *
 * Life of a record: `create` (queued) -> `markRunning` (each attempt) -> `finish` (completed,
 * failed, cancelled or expired). `finish` is idempotent: a second result for a task that already
 * ended is ignored and reported as such, so a result that arrives twice is stored once.
 */

/** Where a task is in its life. */
export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'expired';

/** The statuses a task ends in. */
export const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled', 'expired'];

/** True when `status` is an end state. */
export function isFinalStatus(status: TaskStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/** Whether the task came in through `/send-task` (async) or `/run-task` (a producer waits). */
export type TaskMode = 'async' | 'sync';

/** What a producer submitted, as persisted before the 202 (or before routing a sync task). */
export interface NewTaskRecord {
  readonly taskId: string;
  readonly taskType: string;
  readonly label: string;
  /** The parameters as the producer sent them (already checked to be JSON). */
  readonly parametersJson: string;
  readonly mode: TaskMode;
  /** 0 (lowest) to 9 (highest); default 0. */
  readonly priority: number;
  /** POSTed the final status when the task ends, if set. */
  readonly callbackUrl?: string;
  /** The tenant (API key name) that sent it, if any. */
  readonly tenant?: string;
  /** Unix ms. */
  readonly queuedAt: number;
  /** Unix ms after which a task that has not started ends `expired`; undefined: never. */
  readonly expiresAt?: number;
  /** Replicated mode: the replica whose producer waits (told through Redis when it ends) [none]. */
  readonly origin?: string;
  /** Replicated mode, sync tasks: Unix ms by which the task must have finished (its producer's deadline) [none]. */
  readonly deadlineAt?: number;
}

/** A persisted task, as `GET /tasks/{id}` reports it. */
export interface TaskRecord extends NewTaskRecord {
  readonly status: TaskStatus;
  /** Attempts started so far (0 while queued the first time). */
  readonly attempts: number;
  /** The worker of the latest attempt. */
  readonly workerId?: string;
  /** Whether the latest attempt had to load its label first. */
  readonly labelMiss?: boolean;
  /** Unix ms of the latest attempt's start. */
  readonly startedAt?: number;
  /** Unix ms of the end. */
  readonly finishedAt?: number;
  /** The handler's result as a JSON document, for `completed`. */
  readonly resultJson?: string;
  /** Why it did not complete, for `failed` / `cancelled` / `expired` (catalog code and message). */
  readonly error?: { readonly code: string; readonly message: string };
}

/** How a task ended, for {@link TaskStore.finish}. */
export interface TaskEnding {
  readonly status: Extract<TaskStatus, 'completed' | 'failed' | 'cancelled' | 'expired'>;
  readonly finishedAt: number;
  readonly resultJson?: string;
  readonly error?: { readonly code: string; readonly message: string };
  readonly workerId?: string;
  readonly labelMiss?: boolean;
}

/** A page of {@link TaskStore.list}. */
export interface TaskPage {
  readonly tasks: readonly TaskRecord[];
  /** Pass back as `cursor` for the next page; undefined on the last page. */
  readonly nextCursor?: string;
}

/** The {@link TaskStore} calls that read or write tasks (all but `kind` and `close`), for wrappers. */
export const TASK_STORE_CALLS = [
  'create',
  'get',
  'markRunning',
  'markQueued',
  'finish',
  'unfinished',
  'list',
  'countByStatus',
  'prune',
] as const satisfies readonly Exclude<keyof TaskStore, 'kind' | 'close'>[];

/** The durable store behind async tasks and idempotent retries. */
export interface TaskStore {
  /** `memory`, `sqlite` or `redis`, for logs and metrics labels. */
  readonly kind: string;
  /**
   * Persists a new task. Resolves `created: false` (and stores nothing) when the id is already
   * known, with the existing record, so the caller can answer idempotently.
   */
  create(task: NewTaskRecord): Promise<{ created: true } | { created: false; existing: TaskRecord }>;
  /** The record, or undefined (unknown id, or its result outlived `RESULT_TTL_S`). */
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** An attempt started on `workerId`: status `running`, attempts + 1. False if the task already ended. */
  markRunning(taskId: string, workerId: string, startedAt: number): Promise<boolean>;
  /** The attempt went back to the queue (worker lost, reroute): status `queued` again. False if ended. */
  markQueued(taskId: string): Promise<boolean>;
  /** Ends the task once; false (nothing changed) if it had already ended. */
  finish(taskId: string, ending: TaskEnding): Promise<boolean>;
  /** Tasks that were accepted and have not ended (queued or running), oldest first: re-queued after a restart. */
  unfinished(): Promise<TaskRecord[]>;
  /** Operators' listing, newest first, optionally by status. `limit` default 50, at most 500. */
  list(query: { status?: TaskStatus; limit?: number; cursor?: string }): Promise<TaskPage>;
  /** Counts by status (for metrics and the UI). */
  countByStatus(): Promise<Record<TaskStatus, number>>;
  /**
   * Drops ended tasks whose `finishedAt` is older than `now - resultTtlMs`, and the oldest ended
   * ones beyond `maxResults`. Resolves how many were dropped. Called periodically by the dispatcher.
   */
  prune(now: number, resultTtlMs: number, maxResults: number): Promise<number>;
  /** Releases files and connections. */
  close(): Promise<void>;
}

/** What a call on a closed store rejects with (it never throws synchronously). */
export class TaskStoreClosedError extends Error {
  constructor(kind: string) {
    super(`the ${kind} task store is closed`);
    this.name = 'TaskStoreClosedError';
  }
}

/**
 * What a call rejects with when the store's server cannot be reached (the shared Redis: a lost
 * connection, or no answer within the command timeout). The HTTP routes answer it with 503
 * `task_store_unavailable` and its message; `cause` is the client's error.
 */
export class TaskStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskStoreUnavailableError';
  }
}
