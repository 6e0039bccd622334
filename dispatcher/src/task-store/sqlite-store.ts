/**
 * The embedded task store: one SQLite file (better-sqlite3), the default for `npm start` and a
 * single dispatcher.
 *
 * WAL mode with `synchronous=NORMAL`: a write is in the WAL when its call resolves, so it survives
 * the process being killed (SIGKILL included); only an OS crash or power loss can lose the last
 * transactions before a checkpoint, which is SQLite's documented trade for not syncing every commit.
 * better-sqlite3 is synchronous: each call is one short prepared statement on the event loop, wrapped
 * in a resolved promise so the stores are interchangeable.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { TASK_STATUSES, zeroCounts } from './memory-store.js';
import { decodeCursor, encodeCursor, pageLimit } from './task-page.js';
import {
  TaskStoreClosedError,
  type NewTaskRecord,
  type TaskEnding,
  type TaskPage,
  type TaskRecord,
  type TaskStatus,
  type TaskStore,
} from './task-store.js';

// Ended tasks deleted per statement when pruning.
const PRUNE_BATCH = 1000;

/** The schema this code reads and writes; a file of a newer one is refused. */
export const SQLITE_SCHEMA_VERSION = 1;

/** Options of {@link SqliteTaskStore}. */
export interface SqliteTaskStoreOptions {
  /** The database file; its folder is created if missing. `:memory:` works for tests. */
  path: string;
  /** How long a statement waits for another connection's lock before failing (ms) [5000]. */
  busyTimeoutMs?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
  task_id TEXT PRIMARY KEY,
  task_type TEXT NOT NULL,
  label TEXT NOT NULL,
  parameters_json TEXT NOT NULL,
  mode TEXT NOT NULL,
  priority INTEGER NOT NULL,
  callback_url TEXT,
  tenant TEXT,
  queued_at INTEGER NOT NULL,
  expires_at INTEGER,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker_id TEXT,
  label_miss INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  result_json TEXT,
  error_code TEXT,
  error_message TEXT
);
-- Operators' listing, newest first, all tasks or by status (keyset on queued_at, task_id).
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (queued_at, task_id);
CREATE INDEX IF NOT EXISTS tasks_by_status_time ON tasks (status, queued_at, task_id);
-- Re-queueing after a restart reads only the tasks that have not ended.
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (queued_at, task_id)
  WHERE status IN ('queued', 'running');
-- Pruning by age and by count walks ended tasks by finish time (finished_at is set exactly when
-- a task ends).
CREATE INDEX IF NOT EXISTS tasks_by_finish ON tasks (finished_at, task_id)
  WHERE finished_at IS NOT NULL;
`;

const UNFINISHED = `status IN ('queued', 'running')`;

interface Row {
  task_id: string;
  task_type: string;
  label: string;
  parameters_json: string;
  mode: string;
  priority: number;
  callback_url: string | null;
  tenant: string | null;
  queued_at: number;
  expires_at: number | null;
  status: string;
  attempts: number;
  worker_id: string | null;
  label_miss: number | null;
  started_at: number | null;
  finished_at: number | null;
  result_json: string | null;
  error_code: string | null;
  error_message: string | null;
}

/** A {@link TaskStore} in a SQLite file. */
export class SqliteTaskStore implements TaskStore {
  readonly kind = 'sqlite';
  /** The database file. */
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepare>;
  private closed = false;

  /** Opens (creating if needed) the file and its schema. @throws when the file has a newer schema. */
  constructor(options: SqliteTaskStoreOptions) {
    this.path = options.path;
    if (options.path !== ':memory:' && !options.path.startsWith('file:')) {
      mkdirSync(dirname(options.path), { recursive: true });
    }
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      migrate(this.db);
      this.stmt = prepare(this.db);
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  create(task: NewTaskRecord): Promise<{ created: true } | { created: false; existing: TaskRecord }> {
    return this.run(() => {
      const inserted = this.stmt.insert.run({
        task_id: task.taskId,
        task_type: task.taskType,
        label: task.label,
        parameters_json: task.parametersJson,
        mode: task.mode,
        priority: task.priority,
        callback_url: task.callbackUrl ?? null,
        tenant: task.tenant ?? null,
        queued_at: task.queuedAt,
        expires_at: task.expiresAt ?? null,
      });
      if (inserted.changes === 1) return { created: true as const };
      const existing = this.stmt.get.get(task.taskId) as Row | undefined;
      // Only a concurrent prune between the two statements could leave nothing; retrying is right.
      if (!existing) throw new Error(`task ${task.taskId} vanished while being created`);
      return { created: false as const, existing: fromRow(existing) };
    });
  }

  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.run(() => {
      const row = this.stmt.get.get(taskId) as Row | undefined;
      return row ? fromRow(row) : undefined;
    });
  }

  markRunning(taskId: string, workerId: string, startedAt: number): Promise<boolean> {
    return this.run(
      () =>
        this.stmt.markRunning.run({ task_id: taskId, worker_id: workerId, started_at: startedAt }).changes ===
        1,
    );
  }

  markQueued(taskId: string): Promise<boolean> {
    return this.run(() => this.stmt.markQueued.run(taskId).changes === 1);
  }

  finish(taskId: string, ending: TaskEnding): Promise<boolean> {
    return this.run(
      () =>
        this.stmt.finish.run({
          task_id: taskId,
          status: ending.status,
          finished_at: ending.finishedAt,
          result_json: ending.resultJson ?? null,
          error_code: ending.error?.code ?? null,
          error_message: ending.error?.message ?? null,
          worker_id: ending.workerId ?? null,
          label_miss: ending.labelMiss === undefined ? null : ending.labelMiss ? 1 : 0,
        }).changes === 1,
    );
  }

  unfinished(): Promise<TaskRecord[]> {
    return this.run(() => (this.stmt.unfinished.all() as Row[]).map(fromRow));
  }

  list(query: { status?: TaskStatus; limit?: number; cursor?: string }): Promise<TaskPage> {
    return this.run(() => {
      const limit = pageLimit(query.limit);
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      // One row more than asked says whether another page exists.
      const params = { limit: limit + 1, status: query.status, q: after?.queuedAt, id: after?.taskId };
      const statement =
        query.status === undefined
          ? after
            ? this.stmt.listAfter
            : this.stmt.list
          : after
            ? this.stmt.listStatusAfter
            : this.stmt.listStatus;
      const rows = statement.all(stripUndefined(params)) as Row[];
      const tasks = rows.slice(0, limit).map(fromRow);
      const last = tasks[tasks.length - 1];
      return rows.length > limit && last ? { tasks, nextCursor: encodeCursor(last) } : { tasks };
    });
  }

  countByStatus(): Promise<Record<TaskStatus, number>> {
    return this.run(() => {
      const counts = zeroCounts();
      for (const row of this.stmt.counts.all() as { status: TaskStatus; n: number }[]) {
        if (TASK_STATUSES.includes(row.status)) counts[row.status] = row.n;
      }
      return counts;
    });
  }

  async prune(now: number, resultTtlMs: number, maxResults: number): Promise<number> {
    // In batches, yielding between them, so a large backlog never stalls the event loop for long.
    let dropped = 0;
    for (;;) {
      const n = await this.run(() => this.stmt.pruneOld.run(now - resultTtlMs, PRUNE_BATCH).changes);
      dropped += n;
      if (n < PRUNE_BATCH) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const ended = await this.run(() => (this.stmt.countEnded.get() as { n: number }).n);
    let over = ended - Math.max(0, Math.floor(maxResults));
    while (over > 0) {
      const n = await this.run(() => this.stmt.pruneOldest.run(Math.min(over, PRUNE_BATCH)).changes);
      dropped += n;
      over -= n;
      if (n === 0) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return dropped;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  private run<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new TaskStoreClosedError(this.kind));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }
}

/** Creates the schema, or checks an existing file's version. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(SCHEMA);
    const row = db.prepare('SELECT MAX(version) AS version FROM schema_version').get() as {
      version: number | null;
    };
    if (row.version === null) {
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SQLITE_SCHEMA_VERSION);
    } else if (row.version > SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `task store ${db.name} has schema version ${row.version}; this dispatcher reads up to ${SQLITE_SCHEMA_VERSION}`,
      );
    }
  }).immediate();
}

function prepare(db: Database.Database) {
  const newestFirst = 'ORDER BY queued_at DESC, task_id DESC LIMIT @limit';
  const afterCursor = '(queued_at, task_id) < (@q, @id)';
  return {
    insert: db.prepare(
      `INSERT INTO tasks (task_id, task_type, label, parameters_json, mode, priority, callback_url,
         tenant, queued_at, expires_at, status, attempts)
       VALUES (@task_id, @task_type, @label, @parameters_json, @mode, @priority, @callback_url,
         @tenant, @queued_at, @expires_at, 'queued', 0)
       ON CONFLICT (task_id) DO NOTHING`,
    ),
    get: db.prepare('SELECT * FROM tasks WHERE task_id = ?'),
    markRunning: db.prepare(
      `UPDATE tasks SET status = 'running', attempts = attempts + 1, worker_id = @worker_id,
         started_at = @started_at, label_miss = NULL
       WHERE task_id = @task_id AND ${UNFINISHED}`,
    ),
    markQueued: db.prepare(`UPDATE tasks SET status = 'queued' WHERE task_id = ? AND ${UNFINISHED}`),
    finish: db.prepare(
      `UPDATE tasks SET status = @status, finished_at = @finished_at,
         result_json = COALESCE(@result_json, result_json),
         error_code = COALESCE(@error_code, error_code),
         error_message = COALESCE(@error_message, error_message),
         worker_id = COALESCE(@worker_id, worker_id),
         label_miss = COALESCE(@label_miss, label_miss)
       WHERE task_id = @task_id AND ${UNFINISHED}`,
    ),
    // The planner, without statistics, would take the status index and sort; this one is in order.
    unfinished: db.prepare(
      `SELECT * FROM tasks INDEXED BY tasks_unfinished WHERE ${UNFINISHED} ORDER BY queued_at, task_id`,
    ),
    list: db.prepare(`SELECT * FROM tasks ${newestFirst}`),
    listAfter: db.prepare(`SELECT * FROM tasks WHERE ${afterCursor} ${newestFirst}`),
    listStatus: db.prepare(`SELECT * FROM tasks WHERE status = @status ${newestFirst}`),
    listStatusAfter: db.prepare(
      `SELECT * FROM tasks WHERE status = @status AND ${afterCursor} ${newestFirst}`,
    ),
    counts: db.prepare('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status'),
    pruneOld: db.prepare(
      `DELETE FROM tasks WHERE task_id IN (
         SELECT task_id FROM tasks INDEXED BY tasks_by_finish
         WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)`,
    ),
    countEnded: db.prepare(
      'SELECT COUNT(*) AS n FROM tasks INDEXED BY tasks_by_finish WHERE finished_at IS NOT NULL',
    ),
    pruneOldest: db.prepare(
      `DELETE FROM tasks WHERE task_id IN (
         SELECT task_id FROM tasks INDEXED BY tasks_by_finish WHERE finished_at IS NOT NULL
         ORDER BY finished_at, task_id LIMIT ?)`,
    ),
  };
}

function stripUndefined(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
}

function fromRow(row: Row): TaskRecord {
  const record: Record<string, unknown> = {
    taskId: row.task_id,
    taskType: row.task_type,
    label: row.label,
    parametersJson: row.parameters_json,
    mode: row.mode,
    priority: row.priority,
    queuedAt: row.queued_at,
    status: row.status,
    attempts: row.attempts,
  };
  if (row.callback_url !== null) record.callbackUrl = row.callback_url;
  if (row.tenant !== null) record.tenant = row.tenant;
  if (row.expires_at !== null) record.expiresAt = row.expires_at;
  if (row.worker_id !== null) record.workerId = row.worker_id;
  if (row.label_miss !== null) record.labelMiss = row.label_miss === 1;
  if (row.started_at !== null) record.startedAt = row.started_at;
  if (row.finished_at !== null) record.finishedAt = row.finished_at;
  if (row.result_json !== null) record.resultJson = row.result_json;
  if (row.error_code !== null) {
    record.error = { code: row.error_code, message: row.error_message ?? '' };
  }
  return record as unknown as TaskRecord;
}
