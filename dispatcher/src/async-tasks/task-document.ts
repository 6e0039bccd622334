/** The JSON document of one task, as GET /tasks/{id} answers it and callbacks POST it. */
import type { TaskRecord } from '../task-store/task-store.js';

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Where GET /tasks/{id} is for `taskId`. */
export function statusUrl(taskId: string): string {
  return `/tasks/${encodeURIComponent(taskId)}`;
}

/**
 * `{task_id, status, mode, task_type, label, priority, attempts, worker_id, label_miss,
 * queued_at, started_at, finished_at, expires_at, result, error}`; times are ISO 8601, unset
 * fields null, `result` the worker's result as JSON.
 */
export function taskDocument(r: TaskRecord): Record<string, unknown> {
  return {
    task_id: r.taskId,
    status: r.status,
    mode: r.mode,
    task_type: r.taskType,
    label: r.label,
    priority: r.priority,
    attempts: r.attempts,
    worker_id: r.workerId ?? null,
    label_miss: r.labelMiss ?? null,
    queued_at: iso(r.queuedAt),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    expires_at: iso(r.expiresAt),
    result: r.resultJson === undefined ? null : (JSON.parse(r.resultJson) as unknown),
    error: r.error ?? null,
    status_url: statusUrl(r.taskId),
  };
}
