/**
 * The in-process task store: a Map, for tests and throwaway runs. Nothing survives the process;
 * its semantics are the contract the SQLite and Redis stores are tested against.
 */
import { compareNewestFirst, decodeCursor, encodeCursor, pageLimit, type PagePosition } from './task-page.js';
import {
  FINAL_STATUSES,
  isFinalStatus,
  TaskStoreClosedError,
  type NewTaskRecord,
  type TaskEnding,
  type TaskPage,
  type TaskRecord,
  type TaskStatus,
  type TaskStore,
} from './task-store.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** All statuses, in the order `countByStatus` reports them. */
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running', ...FINAL_STATUSES];

/** A count of zero for every status. */
export function zeroCounts(): Record<TaskStatus, number> {
  const counts = {} as Record<TaskStatus, number>;
  for (const status of TASK_STATUSES) counts[status] = 0;
  return counts;
}

/** A {@link TaskStore} in memory. Records are copied in and out, so callers cannot alter them. */
export class MemoryTaskStore implements TaskStore {
  readonly kind = 'memory';
  private readonly tasks = new Map<string, Mutable<TaskRecord>>();
  private closed = false;

  create(task: NewTaskRecord): Promise<{ created: true } | { created: false; existing: TaskRecord }> {
    return this.run(() => {
      const existing = this.tasks.get(task.taskId);
      if (existing) return { created: false as const, existing: copy(existing) };
      this.tasks.set(task.taskId, stored(task));
      return { created: true as const };
    });
  }

  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.run(() => {
      const task = this.tasks.get(taskId);
      return task ? copy(task) : undefined;
    });
  }

  markRunning(taskId: string, workerId: string, startedAt: number): Promise<boolean> {
    return this.run(() => {
      const task = this.tasks.get(taskId);
      if (!task || isFinalStatus(task.status)) return false;
      task.status = 'running';
      task.attempts += 1;
      task.workerId = workerId;
      task.startedAt = startedAt;
      // The miss belongs to the attempt; the new one reports its own when it ends. (Not `delete`:
      // that turns the record into a slow dictionary-mode object; copy() drops undefined fields.)
      task.labelMiss = undefined;
      return true;
    });
  }

  markQueued(taskId: string): Promise<boolean> {
    return this.run(() => {
      const task = this.tasks.get(taskId);
      if (!task || isFinalStatus(task.status)) return false;
      task.status = 'queued';
      return true;
    });
  }

  finish(taskId: string, ending: TaskEnding): Promise<boolean> {
    return this.run(() => {
      const task = this.tasks.get(taskId);
      if (!task || isFinalStatus(task.status)) return false;
      task.status = ending.status;
      task.finishedAt = ending.finishedAt;
      if (ending.resultJson !== undefined) task.resultJson = ending.resultJson;
      if (ending.error !== undefined) task.error = { ...ending.error };
      if (ending.workerId !== undefined) task.workerId = ending.workerId;
      if (ending.labelMiss !== undefined) task.labelMiss = ending.labelMiss;
      return true;
    });
  }

  unfinished(): Promise<TaskRecord[]> {
    return this.run(() =>
      [...this.tasks.values()]
        .filter((t) => !isFinalStatus(t.status))
        .sort((a, b) => compareNewestFirst(b, a))
        .map(copy),
    );
  }

  list(query: { status?: TaskStatus; limit?: number; cursor?: string }): Promise<TaskPage> {
    return this.run(() => {
      const limit = pageLimit(query.limit);
      const after: PagePosition | undefined =
        query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const rows = [...this.tasks.values()]
        .filter((t) => query.status === undefined || t.status === query.status)
        .filter((t) => after === undefined || compareNewestFirst(after, t) < 0)
        .sort(compareNewestFirst);
      const tasks = rows.slice(0, limit).map(copy);
      const last = tasks[tasks.length - 1];
      return rows.length > limit && last ? { tasks, nextCursor: encodeCursor(last) } : { tasks };
    });
  }

  countByStatus(): Promise<Record<TaskStatus, number>> {
    return this.run(() => {
      const counts = zeroCounts();
      for (const task of this.tasks.values()) counts[task.status] += 1;
      return counts;
    });
  }

  prune(now: number, resultTtlMs: number, maxResults: number): Promise<number> {
    return this.run(() => {
      const ended = [...this.tasks.values()]
        .filter((t) => isFinalStatus(t.status))
        .sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0));
      let dropped = 0;
      ended.forEach((task, index) => {
        if (index >= maxResults || (task.finishedAt ?? 0) < now - resultTtlMs) {
          this.tasks.delete(task.taskId);
          dropped += 1;
        }
      });
      return dropped;
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Runs `fn` unless closed; a closed store rejects (never throws), as the others do. */
  private run<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new TaskStoreClosedError(this.kind));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }
}

/**
 * A new record with every field present (undefined when absent), so all records share one shape
 * and the updates on the /run-task path (markRunning, finish) stay fast property stores.
 */
function stored(task: NewTaskRecord): Mutable<TaskRecord> {
  return {
    taskId: task.taskId,
    taskType: task.taskType,
    label: task.label,
    parametersJson: task.parametersJson,
    mode: task.mode,
    priority: task.priority,
    callbackUrl: task.callbackUrl,
    tenant: task.tenant,
    queuedAt: task.queuedAt,
    expiresAt: task.expiresAt,
    status: 'queued',
    attempts: 0,
    workerId: undefined,
    labelMiss: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    resultJson: undefined,
    error: undefined,
  };
}

/** A copy without undefined fields (as the other stores return records). */
function copy<T extends NewTaskRecord>(task: T): T {
  const out = {} as Record<string, unknown>;
  // for-in over a plain record (own fields only): no [key, value] array per field as Object.entries.
  for (const key in task) {
    const value = task[key];
    if (value === undefined) continue;
    out[key] = key === 'error' ? { ...(value as object) } : value;
  }
  return out as T;
}
