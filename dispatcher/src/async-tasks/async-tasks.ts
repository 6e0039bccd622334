/**
 * Asynchronous tasks (issue 12): `/send-task` accepts a task into the task store and answers 202;
 * the task waits in the store's backlog and is handed to the task tracker (the same routing as
 * `/run-task`: affinity, retries, drains), at most `maxAdmitted` at once, highest priority first;
 * its ending is written to the store once and POSTed to its `callback_url`.
 *
 *   POST /send-task ─> store.create ─> 202 ─> backlog ─pump─> TaskTracker.submit ─> worker
 *                                               ^  │ refused for now (queue full, no worker yet)
 *                                               └──┘
 *   tracker reply ─> store.finish (once) ─> callback ─> metrics
 *   start: store.unfinished() ─> backlog (before the server listens)
 *   drain: tasks the tracker gives back with shutting_down stay unfinished in the store
 *
 * `/run-task` idempotency: a task_id whose task completed within RESULT_TTL_S gets the stored
 * result, not a second run; one still queued or running as an async task gets 409
 * duplicate_task_id. Completed sync results are written to the store (PERSIST_SYNC_TASKS) so a
 * producer that lost its connection can retry; sync tasks are not persisted on arrival: their
 * producer holds the connection, and a task re-run after a dispatcher crash would answer no one.
 */
import type { Logger } from 'pino';
import { DispatcherError, type DispatcherErrorCode } from '../errors.js';
import type { DispatcherMetrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import { storedOutcome, type CompletedTask, type TaskOutcome } from '../task-answer.js';
import {
  ENDED_ELSEWHERE,
  HANDED_OVER,
  type RunTaskRequest,
  type TaskReply,
  type TaskTracker,
} from '../task-tracker.js';
import { isFinalStatus, type TaskRecord, type TaskStatus, type TaskStore } from '../task-store/task-store.js';
import type { ResolvedAsyncTaskOptions } from './async-options.js';
import { Backlog } from './backlog.js';
import { CallbackSender } from './callbacks.js';
import { taskDocument } from './task-document.js';

/** A validated POST /send-task body. */
export interface SendTaskRequest {
  readonly taskId: string;
  readonly taskType: string;
  readonly label: string;
  readonly parametersJson: string;
  /** 0-9 [0]. */
  readonly priority: number;
  readonly callbackUrl?: string;
  /** Seconds the task may wait to start before it ends `expired`. */
  readonly ttlS?: number;
  /** The API key's name (fair queueing, as on /run-task); kept with the task. */
  readonly tenant?: string;
}

/** What POST /send-task answers. */
export type SendTaskAnswer =
  | { readonly accepted: true; readonly record: TaskRecord }
  | { readonly accepted: false; readonly existing: TaskRecord };

/** What the service needs. */
export interface AsyncTasksDeps {
  readonly store: TaskStore;
  readonly tracker: TaskTracker;
  readonly router: Router;
  readonly options: ResolvedAsyncTaskOptions;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  /**
   * Replicated mode: called after a task was persisted; true when this replica is a standby and
   * handed the task to the leader (then it stays out of the local backlog) [unset: never forwards].
   */
  readonly forward?: (taskId: string) => boolean;
}

// Refusals that mean "not now": the task stays in the backlog and is offered again.
const NOT_NOW: ReadonlySet<DispatcherErrorCode> = new Set([
  'queue_full',
  'no_capable_worker',
  'shutting_down',
]);

/** The async task service behind /send-task, /tasks and /run-task idempotency. */
export class AsyncTasks {
  /** Accepted tasks not handed to the tracker yet. */
  private readonly backlog = new Backlog();
  /** Ids handed to the tracker and not ended. */
  private readonly admitted = new Set<string>();
  /** Ids the tracker started at least once (an attempt was sent): a timeout then fails, not expires. */
  private readonly started = new Set<string>();
  private readonly callbacks: CallbackSender;
  private readonly pumpTimer: NodeJS.Timeout;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly writes = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly deps: AsyncTasksDeps) {
    const o = deps.options;
    this.callbacks = new CallbackSender(
      {
        secret: o.callbackSecret,
        attempts: o.callbackAttempts,
        backoffMs: o.callbackBackoffMs,
        timeoutMs: o.callbackTimeoutMs,
      },
      deps.metrics,
      deps.logger,
    );
    // Background loops catch their own errors.
    this.pumpTimer = setInterval(() => this.pump(), o.pumpIntervalMs).unref();
    this.pruneTimer = setInterval(() => {
      this.track(
        deps.store
          .prune(Date.now(), o.resultTtlS * 1000, o.maxResults)
          .then((n) => n > 0 && deps.logger.info({ event: 'results_pruned', count: n }, 'results pruned')),
      );
    }, o.pruneIntervalMs).unref();
  }

  /** Accepted async tasks waiting for the router (backlog) plus those handed to it. */
  get pending(): number {
    return this.backlog.size + this.admitted.size;
  }

  /**
   * Puts every unfinished task of the store back in the backlog (after a restart). Call before the
   * server accepts requests, so recovered tasks go before new ones of their priority.
   */
  async recover(): Promise<number> {
    const tasks = await this.deps.store.unfinished();
    let n = 0;
    for (const task of tasks) {
      if (task.mode !== 'async') {
        // A sync task's producer is gone with the old process; it hears nothing, so end it with a reason.
        await this.deps.store.finish(task.taskId, {
          status: 'failed',
          finishedAt: Date.now(),
          error: { code: 'shutting_down', message: 'the dispatcher stopped before the task finished' },
        });
        continue;
      }
      if (task.status === 'running') await this.deps.store.markQueued(task.taskId);
      this.backlog.add({ ...task, status: 'queued' });
      n++;
    }
    this.deps.logger.info({ event: 'async_tasks_recovered', count: n }, 'unfinished tasks re-queued');
    this.pump();
    return n;
  }

  /** POST /send-task: persists the task (then the caller answers 202) or returns the existing record. */
  async send(req: SendTaskRequest): Promise<SendTaskAnswer> {
    const { tracker, router, store, options } = this.deps;
    if (this.stopped || !tracker.isAdmitting) throw new DispatcherError('shutting_down', undefined, 5);
    const known = await store.get(req.taskId);
    if (known) return { accepted: false, existing: known };
    if (router.has(req.taskId))
      throw new DispatcherError('duplicate_task_id', `task_id ${req.taskId} is already in flight`);
    // With workers connected, a type none of them serves is a mistake; with none (a restart), it may come.
    if (router.workerCount > 0 && router.taskTypeStatus(req.taskType) === 'unknown')
      throw new DispatcherError('unknown_task_type', `no worker serves task type ${req.taskType}`);
    if (this.backlog.size >= options.maxBacklog)
      throw new DispatcherError('queue_full', `${this.backlog.size} async tasks are waiting`, 5);
    const queuedAt = Date.now();
    const created = await store.create({
      taskId: req.taskId,
      taskType: req.taskType,
      label: req.label,
      parametersJson: req.parametersJson,
      mode: 'async',
      priority: req.priority,
      queuedAt,
      ...(req.callbackUrl !== undefined ? { callbackUrl: req.callbackUrl } : {}),
      ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
      ...(req.ttlS !== undefined ? { expiresAt: queuedAt + req.ttlS * 1000 } : {}),
    });
    if (!created.created) return { accepted: false, existing: created.existing };
    const record = (await store.get(req.taskId))!;
    if (this.deps.forward?.(req.taskId) === true) return { accepted: true, record };
    this.backlog.add(record);
    this.deps.logger.info(
      { event: 'async_task_accepted', task_id: req.taskId, label: req.label, priority: req.priority },
      'async task accepted',
    );
    // After the caller's 202 is on its way.
    setImmediate(() => this.pump());
    return { accepted: true, record };
  }

  /** Whether this replica holds the task (in its backlog or handed to its tracker). */
  has(taskId: string): boolean {
    return this.backlog.has(taskId) || this.admitted.has(taskId);
  }

  /** Replicated mode, the leader: a queued task from the store (forwarded, or left by a dead leader) joins the backlog. */
  enqueue(record: TaskRecord): void {
    if (this.stopped || this.has(record.taskId)) return;
    this.backlog.add({ ...record, status: 'queued' });
    setImmediate(() => this.pump());
  }

  /**
   * Failover: takes over an async task the previous leader sent to `workerId` (see
   * TaskTracker.adopt); false when it cannot be adopted there (the caller queues it).
   */
  adoptRunning(record: TaskRecord, workerId: string): boolean {
    if (this.stopped || this.has(record.taskId)) return false;
    this.admitted.add(record.taskId);
    this.started.add(record.taskId);
    const adopted = this.deps.tracker.adopt(
      this.request(record, Date.now()),
      workerId,
      record.attempts,
      (outcome) => this.afterOutcome(record, outcome),
    );
    if (!adopted) {
      this.admitted.delete(record.taskId);
      this.started.delete(record.taskId);
    }
    return adopted;
  }

  /** This replica stopped leading: the backlog is dropped (its tasks stay queued in the store for the new leader). */
  handOver(): void {
    for (let r = this.backlog.shift(); r !== undefined; r = this.backlog.shift())
      this.deps.forward?.(r.taskId);
  }

  /** GET /tasks/{id}. */
  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.deps.store.get(taskId);
  }

  /** GET /tasks. */
  list(query: { status?: TaskStatus; limit?: number; cursor?: string }) {
    return this.deps.store.list(query);
  }

  /**
   * DELETE /tasks/{id}: a waiting task leaves the backlog or its queue, a running one is cancelled
   * on its worker; it ends `cancelled` and is never sent again. An ended task is left as it is.
   * Resolves the record after the call, or undefined for an unknown id.
   */
  async cancel(taskId: string): Promise<TaskRecord | undefined> {
    const { store, tracker } = this.deps;
    const record = await store.get(taskId);
    if (!record || isFinalStatus(record.status)) return record;
    this.backlog.delete(taskId);
    // The tracker's reply (task_cancelled) ends the record; a task not in the tracker is ended here.
    if (tracker.cancel(taskId) === 'unknown') {
      await this.end(record, {
        status: 'cancelled',
        error: { code: 'task_cancelled', message: `task ${taskId} was cancelled` },
      });
      // A standby tells the leader, which may be running it (it reads the ending from the store).
      this.deps.forward?.(taskId);
    }
    await Promise.allSettled([...this.writes]);
    return store.get(taskId);
  }

  /**
   * POST /run-task through the store: a completed task_id answers its stored result, an async one
   * in flight 409; otherwise the task runs as before and, when it completes, its result is kept.
   */
  submitSync(req: RunTaskRequest, reply: TaskReply): void {
    const { store, tracker, options } = this.deps;
    store.get(req.taskId).then(
      (record) => {
        if (record === undefined) {
          if (!options.persistSyncResults) return tracker.submit(req, reply);
          return tracker.submit(req, (outcome) => {
            // Only JSON results are kept (KServe v2 infers are not sent through /run-task).
            if (!outcome.ok || !('completed' in outcome)) return reply(outcome);
            this.keepSyncResult(req, outcome.completed).then(
              () => reply(outcome),
              () => reply(outcome),
            );
          });
        }
        reply(knownTaskOutcome(record));
      },
      (err: unknown) => {
        // The store is down: run the task anyway (a sync producer waits), without idempotency.
        this.deps.logger.error({ err, event: 'task_store_failed', op: 'get' }, 'task store failed');
        tracker.submit(req, reply);
      },
    );
  }

  /** Stops the loops and callbacks and waits for store writes under way. Tasks stay in the store. Safe twice. */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pumpTimer);
    clearInterval(this.pruneTimer);
    await this.callbacks.close();
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  // ---------------------------------------------------------------- internals

  /** Hands backlog tasks to the tracker, highest priority then oldest first, up to `maxAdmitted`. */
  private pump(): void {
    if (this.stopped || this.backlog.size === 0) return;
    const { tracker, options } = this.deps;
    if (!tracker.isAdmitting) return;
    const now = Date.now();
    // Tasks refused for now (no worker for their type yet) keep their place, ahead of later ones.
    const skipped: TaskRecord[] = [];
    try {
      while (this.admitted.size < options.maxAdmitted) {
        const record = this.backlog.shift();
        if (record === undefined) return;
        if (record.expiresAt !== undefined && record.expiresAt <= now) {
          void this.end(record, {
            status: 'expired',
            error: { code: 'task_timeout', message: 'the task did not start before its ttl_s ran out' },
          });
          continue;
        }
        const refused = this.admit(record, now);
        if (refused === undefined) continue;
        skipped.push(record);
        if (refused === 'queue_full' || refused === 'shutting_down') return;
      }
    } finally {
      for (let i = skipped.length - 1; i >= 0; i--) this.backlog.returnToFront(skipped[i]!);
    }
  }

  /** Submits one task; returns the code of a refusal that keeps it in the backlog. */
  private admit(record: TaskRecord, now: number): DispatcherErrorCode | undefined {
    const { tracker, router, store, options } = this.deps;
    const taskId = record.taskId;
    let sync = true;
    let notNow: DispatcherErrorCode | undefined;
    const timeoutMs = Math.max(
      1,
      Math.min(2 ** 31 - 1, record.expiresAt !== undefined ? record.expiresAt - now : options.asyncTimeoutMs),
    );
    this.admitted.add(taskId);
    tracker.submit(
      {
        taskId,
        taskType: record.taskType,
        label: record.label,
        parametersJson: record.parametersJson,
        priority: record.priority,
        ...(record.tenant !== undefined ? { tenant: record.tenant } : {}),
        timeoutMs,
        onSent: (workerId) => {
          this.started.add(taskId);
          this.track(store.markRunning(taskId, workerId, Date.now()));
        },
      },
      (outcome) => {
        if (outcome === ENDED_ELSEWHERE) {
          this.admitted.delete(taskId);
          this.started.delete(taskId);
          return;
        }
        if (outcome === HANDED_OVER) {
          // This replica stopped leading: the task goes to the new leader (adopted where it runs).
          this.admitted.delete(taskId);
          this.started.delete(taskId);
          this.deps.forward?.(taskId);
          return;
        }
        const code = outcome.ok ? undefined : outcome.error.code;
        const waitsForWorkers = code === 'unknown_task_type' && router.workerCount === 0 && sync;
        if (code !== undefined && (NOT_NOW.has(code) || waitsForWorkers)) {
          // Not now: back to the backlog (also for shutting_down at a drain: it stays in the store).
          this.admitted.delete(taskId);
          this.started.delete(taskId);
          // A synchronous refusal goes back to the front (the pump does it); a later one to the back.
          if (sync) notNow = code;
          else if (!this.stopped && code !== 'shutting_down') this.backlog.add(record);
          return;
        }
        this.admitted.delete(taskId);
        void this.onOutcome(record, outcome);
        if (!sync) this.pump();
      },
    );
    sync = false;
    return notNow;
  }

  /** The tracker's request for a stored task. */
  private request(record: TaskRecord, now: number): RunTaskRequest {
    const taskId = record.taskId;
    const timeoutMs = Math.max(
      1,
      Math.min(
        2 ** 31 - 1,
        record.expiresAt !== undefined ? record.expiresAt - now : this.deps.options.asyncTimeoutMs,
      ),
    );
    return {
      taskId,
      taskType: record.taskType,
      label: record.label,
      parametersJson: record.parametersJson,
      priority: record.priority,
      ...(record.tenant !== undefined ? { tenant: record.tenant } : {}),
      timeoutMs,
      onSent: (workerId) => {
        this.started.add(taskId);
        this.track(this.deps.store.markRunning(taskId, workerId, Date.now()));
      },
    };
  }

  /** An adopted task's outcome: handed over again, put back (not now), or ended. */
  private afterOutcome(record: TaskRecord, outcome: TaskOutcome): void {
    this.admitted.delete(record.taskId);
    if (outcome === HANDED_OVER || outcome === ENDED_ELSEWHERE) {
      this.started.delete(record.taskId);
      if (outcome === HANDED_OVER) this.deps.forward?.(record.taskId);
      return;
    }
    const code = outcome.ok ? undefined : outcome.error.code;
    if (code !== undefined && NOT_NOW.has(code)) {
      this.started.delete(record.taskId);
      if (!this.stopped && code !== 'shutting_down') this.backlog.add(record);
      return;
    }
    void this.onOutcome(record, outcome);
    this.pump();
  }

  private async onOutcome(record: TaskRecord, outcome: TaskOutcome): Promise<void> {
    const started = this.started.delete(record.taskId);
    if (outcome.ok && 'completed' in outcome) {
      const c = outcome.completed;
      await this.end(record, {
        status: 'completed',
        resultJson: c.resultJson,
        workerId: c.workerId,
        labelMiss: c.labelMiss,
      });
      return;
    }
    if (outcome.ok) {
      // Async tasks carry JSON parameters only, so a binary (KServe v2) answer is a worker's mistake.
      await this.end(record, {
        status: 'failed',
        error: { code: 'worker_error', message: 'the worker answered an async task with binary tensors' },
      });
      return;
    }
    const e = outcome.error;
    const status: 'failed' | 'cancelled' | 'expired' =
      e.code === 'task_cancelled'
        ? 'cancelled'
        : e.code === 'task_timeout' && !started && record.expiresAt !== undefined
          ? 'expired'
          : 'failed';
    await this.end(record, { status, error: { code: e.code, message: e.message } });
  }

  /** Writes the ending once; counts it, logs it and sends the callback only if this write ended the task. */
  private async end(
    record: TaskRecord,
    ending: {
      status: 'completed' | 'failed' | 'cancelled' | 'expired';
      resultJson?: string;
      error?: { code: string; message: string };
      workerId?: string;
      labelMiss?: boolean;
    },
  ): Promise<void> {
    const { store, metrics, logger } = this.deps;
    const write = store.finish(record.taskId, { ...ending, finishedAt: Date.now() });
    this.track(write);
    let changed: boolean;
    try {
      changed = await write;
    } catch (err) {
      logger.error({ err, event: 'task_store_failed', op: 'finish', task_id: record.taskId }, 'store failed');
      return;
    }
    if (!changed) return;
    metrics.resultsStored.inc({ status: ending.status });
    logger.info(
      {
        event: 'async_task_ended',
        task_id: record.taskId,
        status: ending.status,
        ...(ending.error ? { error_code: ending.error.code } : {}),
      },
      'async task ended',
    );
    if (record.callbackUrl !== undefined && !this.stopped) {
      const final = await store.get(record.taskId).catch(() => undefined);
      if (final) this.callbacks.send(record.callbackUrl, record.taskId, JSON.stringify(taskDocument(final)));
    }
  }

  private async keepSyncResult(req: RunTaskRequest, c: CompletedTask): Promise<void> {
    const { store, logger, metrics } = this.deps;
    try {
      const now = Date.now();
      const created = await store.create({
        taskId: req.taskId,
        taskType: req.taskType,
        label: req.label,
        parametersJson: req.parametersJson,
        mode: 'sync',
        priority: req.priority ?? 0,
        queuedAt: now,
      });
      if (!created.created) return;
      // The record says how many attempts it took, as the first answer did.
      for (let i = 0; i < c.attempts; i++) await store.markRunning(req.taskId, c.workerId, now);
      const ok = await store.finish(req.taskId, {
        status: 'completed',
        finishedAt: now,
        resultJson: c.resultJson,
        workerId: c.workerId,
        labelMiss: c.labelMiss,
      });
      if (ok) metrics.resultsStored.inc({ status: 'completed' });
    } catch (err) {
      logger.error({ err, event: 'task_store_failed', op: 'keep_sync_result' }, 'could not keep the result');
    }
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((err: unknown) =>
      this.deps.logger.error({ err, event: 'task_store_failed' }, 'task store call failed'),
    );
    this.writes.add(guarded);
    void guarded.finally(() => this.writes.delete(guarded));
  }
}

/** The /run-task answer for a task_id the store already has. */
function knownTaskOutcome(record: TaskRecord): TaskOutcome {
  if (!isFinalStatus(record.status))
    return {
      ok: false,
      error: new DispatcherError(
        'duplicate_task_id',
        `task_id ${record.taskId} is already in flight (${record.status}; see /tasks/${encodeURIComponent(record.taskId)})`,
      ),
    };
  return storedOutcome(
    record,
    (r) => `task_id ${r.taskId} already ended ${r.status}: ${r.error?.message ?? ''}`,
  );
}
