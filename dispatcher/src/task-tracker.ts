import { performance } from 'node:perf_hooks';
import {
  TASK_ERROR_TABLE,
  taskErrorRule,
  type Heartbeat,
  type LabelEvent,
  type TaskErrorCode,
  type TaskResult,
} from '@smart-routing/proto';
import type { Logger } from 'pino';
import type { ResolvedOptions } from './config.js';
import { DISPATCHER_ERRORS, DispatcherError, type DispatcherErrorCode } from './errors.js';
import type { DispatcherMetrics } from './metrics.js';
import type { StrikeReason, WorkerQuarantine } from './quarantine.js';
import type { RepositoryLabels } from './repository-labels.js';
import type { Router } from './routing/router.js';
import { NO_LABEL, type Decision, type TaskSpec, type WorkerInfo } from './routing/types.js';
import { isJsonDocument, type TaskOutcome } from './task-answer.js';
import type { WorkerLink } from './worker-messages.js';

/** A validated POST /run-task body. */
export interface RunTaskRequest {
  readonly taskId: string;
  readonly taskType: string;
  readonly label: string;
  /** Already checked to be JSON at the edge (the HTTP route); passed on as it came. */
  readonly parametersJson: string;
  /**
   * A `kserve_infer` task's request body (KServe v2, Triton's binary layout), sent on untouched
   * in RunTask.infer_request; its task is answered with the worker's bytes (`inferred`) [none].
   */
  readonly inferRequest?: Uint8Array;
  /** Bytes of JSON header at the start of `inferRequest` (0: all JSON) [0]. */
  readonly inferHeaderLength?: number;
  /** Who sent it (the API key's name), for fair queueing. Default: one shared tenant. */
  readonly tenant?: string;
  /** 0 (default) to 9: orders the task within its queue (async tasks, issue 12). */
  readonly priority?: number;
  /** Overrides `taskTimeoutMs` for this task (async tasks wait longer than a producer holds a connection). */
  readonly timeoutMs?: number;
  /** Called each time an attempt is sent to a worker (async tasks record it in the task store). */
  readonly onSent?: (workerId: string, attempt: number) => void;
}

/** Called exactly once per submitted task with how it ended. */
export type TaskReply = (outcome: TaskOutcome) => void;

/**
 * The outcome {@link TaskTracker.handOver} replies with (compare by identity): this replica stopped
 * leading, the task stays unfinished in the task store and the new leader takes it over.
 */
export const HANDED_OVER: TaskOutcome = Object.freeze({
  ok: false as const,
  error: new DispatcherError('shutting_down', 'this replica stopped leading; the new leader has the task'),
});

/**
 * The outcome {@link TaskTracker.forget} replies with (compare by identity): the task ended on
 * another replica (its outcome is in the task store); nothing is to be written from here.
 */
export const ENDED_ELSEWHERE: TaskOutcome = Object.freeze({
  ok: false as const,
  error: new DispatcherError('task_cancelled', 'the task ended on another replica'),
});

/** Heartbeats of its worker that must miss an adopted task before it counts as not running there. */
const ADOPTION_MISSES = 2;

/** Retry-After for `no_capable_worker` and other transient 503s: long enough for a worker to restart. */
const NO_WORKER_RETRY_AFTER_S = 5;

/** Longest Retry-After for `queue_full`: the drain estimate trusts run times workers report. */
const MAX_RETRY_AFTER_S = 3600;

interface PendingTask {
  /**
   * What the router routes: `label` is '' when the task type is label-free on the fleet;
   * `avoidWorkers` grows with each worker that crashed, went silent or failed on the task.
   */
  spec: TaskSpec;
  /** The producer's label, for the answer. */
  readonly label: string;
  readonly parametersJson: string;
  readonly inferRequest: Uint8Array | undefined;
  readonly inferHeaderLength: number;
  readonly reply: TaskReply;
  readonly receivedAt: number;
  readonly deadlineUnixMs: number;
  readonly timer: NodeJS.Timeout;
  readonly onSent: ((workerId: string, attempt: number) => void) | undefined;
  /** 1 for the first try; bumped on each retry after a worker loss or failed load. */
  attempt: number;
  /** The worker the current attempt was sent to. */
  workerId: string | undefined;
  /** Workers lost while running this task (a second loss fails it: poison, see onWorkerLeft). */
  losses: number;
}

/** What the tracker needs from the rest of the dispatcher. */
export interface TaskTrackerDeps {
  readonly router: Router;
  readonly options: ResolvedOptions;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  /** Set when MODEL_REPOSITORY is: unknown labels get a 404 before routing. */
  readonly repository: RepositoryLabels | undefined;
  /** Carries send / load / unload decisions to the workers. */
  readonly workers: WorkerLink;
  /** Strikes and cool-downs of misbehaving workers [none: no quarantine]. */
  readonly quarantine?: WorkerQuarantine;
  /**
   * Replicated mode: a worker answered `stale_leader` (a newer leader exists). Called before the
   * tracker does anything else with that result [unset: the result is rerouted like any other].
   */
  readonly onStaleLeader?: (workerId: string, taskId: string) => void;
  /**
   * Replicated mode: a result for a task no one waits for here (a replica that stopped leading
   * gets the results of what it had sent) [unset: ignored].
   */
  readonly onUnknownResult?: (workerId: string, result: TaskResult) => void;
  /** Replicated mode: a producer went away (abandon); its stored task is ended [unset: nothing]. */
  readonly onAbandoned?: (taskId: string) => void;
  /**
   * Replicated mode: remember each worker's latest `running_task_ids`, so a new leader finds a task
   * the old one sent before the store heard of it [false].
   */
  readonly trackRunning?: boolean;
}

/**
 * The tasks producers are waiting for (the pending table) and what happens to them when a worker
 * reports (the retry policy), between the HTTP route and the routing core:
 *
 *   POST /run-task ─> submit ─> Router.submit ─> WorkerLink.runTask ─> worker
 *        ^                                                              │
 *        └── reply(outcome) <── onTaskResult <── TaskResult ────────────┘
 *
 * Each task has one timer (504 at the deadline). A task whose worker is lost goes back to the
 * front of the queue with attempt + 1 until `maxAttempts`, then fails `worker_lost`. A worker's
 * error code is handled as `TASK_ERROR_TABLE` (@smart-routing/proto) says: `reroute` goes back to
 * the front as it is, `next_attempt` with attempt + 1 until `maxAttempts`, `fail` (and a used-up
 * `next_attempt`) answers the producer with the table's status and code.
 *
 * Each fact is counted once, from one message:
 * - label hits / misses: TaskResult (`label_miss`, and the code's `ran`); label-free tasks neither;
 * - label loads / evictions: LabelEvent (`loaded` / `evicted`);
 * - the learned load time per label: LabelEvent `loaded` (`duration_ms`), in the router;
 * - the learned run time per label: TaskResult `run_ms`, in the router;
 * - TaskResult `load_ms` only goes into the producer's answer.
 */
export class TaskTracker {
  private readonly pending = new Map<string, PendingTask>();
  private readonly idleWaiters: (() => void)[] = [];
  /** Per label, the workers each retireLabel call still waits for (their `evicted` event). */
  private readonly retiring = new Map<string, Set<{ waiting: Set<string>; done: () => void }>>();
  /** Slot reclaims scheduled after in-flight timeouts (cleared by failAll). */
  private readonly reclaimTimers = new Set<NodeJS.Timeout>();
  private admitting = true;
  /** Tasks taken over at a failover, not yet confirmed by their worker: task id -> heartbeats that missed it. */
  private readonly adopted = new Map<string, number>();
  /**
   * Adopted tasks' misses count only once this replica told the workers it leads: a heartbeat a
   * worker sent before it heard so cannot follow the results it re-sends on hearing it (regression:
   * failover chaos, reRun: a busy new leader counted two such heartbeats and ran a finished task again).
   */
  private adoptionChecks = false;
  /** trackRunning: worker id -> the task ids its latest heartbeat listed. */
  private readonly runningOn = new Map<string, readonly string[]>();

  constructor(private readonly deps: TaskTrackerDeps) {}

  /** trackRunning: the worker whose latest heartbeat lists `taskId` as running, if any. */
  runningWorkerOf(taskId: string): string | undefined {
    for (const [workerId, ids] of this.runningOn) if (ids.includes(taskId)) return workerId;
    return undefined;
  }

  /** Whether a producer (or the async service) waits for this task here. */
  has(taskId: string): boolean {
    return this.pending.has(taskId);
  }

  /**
   * Failover (replicated mode): takes over a task the previous leader sent to `workerId`, without
   * sending it again. Its slot is taken on the worker and its result accepted as if this replica had
   * sent it. When the worker's heartbeats do not list it ({@link ADOPTION_MISSES} in a row) and no
   * result came, it goes back to the queue with attempt + 1. False (nothing done) when the worker is
   * not connected or the id is already known: the caller routes it as a queued task.
   */
  adopt(req: RunTaskRequest, workerId: string, attempt: number, reply: TaskReply): boolean {
    const { router, options } = this.deps;
    if (this.pending.has(req.taskId) || router.has(req.taskId) || router.worker(workerId) === undefined)
      return false;
    const timeoutMs = req.timeoutMs ?? options.taskTimeoutMs;
    const task: PendingTask = {
      spec: {
        id: req.taskId,
        label: router.isLabelFree(req.taskType) ? NO_LABEL : req.label,
        taskType: req.taskType,
        ...(req.tenant === undefined ? {} : { tenant: req.tenant }),
        ...(req.priority ? { priority: req.priority } : {}),
      },
      label: req.label,
      parametersJson: req.parametersJson,
      // A forwarded v2 infer's body: sent again if the adoption is not confirmed.
      inferRequest: req.inferRequest,
      inferHeaderLength: req.inferHeaderLength ?? 0,
      reply,
      receivedAt: performance.now(),
      deadlineUnixMs: Date.now() + timeoutMs,
      timer: setTimeout(() => this.onTimeout(req.taskId, timeoutMs), timeoutMs).unref(),
      onSent: req.onSent,
      attempt: Math.max(1, attempt),
      workerId,
      losses: 0,
    };
    if (!router.adopt(performance.now(), workerId, task.spec)) {
      clearTimeout(task.timer);
      return false;
    }
    this.pending.set(req.taskId, task);
    this.adopted.set(req.taskId, 0);
    return true;
  }

  /**
   * The task ended on another replica (replicated mode): its slot is freed and it is dropped here,
   * answered {@link ENDED_ELSEWHERE}, nothing sent.
   */
  forget(taskId: string): void {
    const task = this.pending.get(taskId);
    if (!task) return;
    clearTimeout(task.timer);
    this.pending.delete(taskId);
    this.adopted.delete(taskId);
    if (task.workerId !== undefined)
      this.apply(this.deps.router.taskFinished(performance.now(), task.workerId, taskId, {}));
    else this.deps.router.cancel(taskId);
    task.reply(ENDED_ELSEWHERE);
    if (this.pending.size === 0 && this.idleWaiters.length > 0)
      for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * This replica stopped leading: every waiting task is let go with {@link HANDED_OVER} (it stays
   * unfinished in the task store for the new leader) and nothing of it is sent again from here.
   */
  handOver(): void {
    this.adoptionChecks = false;
    for (const timer of this.reclaimTimers) clearTimeout(timer);
    this.reclaimTimers.clear();
    this.adopted.clear();
    for (const task of [...this.pending.values()]) {
      this.deps.router.cancel(task.spec.id);
      clearTimeout(task.timer);
      this.pending.delete(task.spec.id);
      task.reply(HANDED_OVER);
    }
    if (this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Tasks a producer is waiting for. */
  get size(): number {
    return this.pending.size;
  }

  /** Whether new tasks are accepted. */
  get isAdmitting(): boolean {
    return this.admitting;
  }

  /** From now on, new tasks get 503 shutting_down. */
  stopAdmitting(): void {
    this.admitting = false;
  }

  /** Resolves when no producer is waiting any more. */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Accepts a task and eventually calls `reply` exactly once (possibly before returning). */
  submit(req: RunTaskRequest, reply: TaskReply): void {
    const { router, options, repository } = this.deps;
    if (!this.admitting) {
      const retryAfter = Math.max(1, Math.ceil(options.shutdownGraceMs / 1000));
      this.refuse(reply, new DispatcherError('shutting_down', undefined, retryAfter));
      return;
    }
    if (this.pending.has(req.taskId) || router.has(req.taskId)) {
      this.refuse(
        reply,
        new DispatcherError('duplicate_task_id', `task_id ${req.taskId} is already in flight`),
      );
      return;
    }
    const typeStatus = router.taskTypeStatus(req.taskType);
    if (typeStatus === 'unknown') {
      this.refuse(
        reply,
        new DispatcherError('unknown_task_type', `no worker serves task type ${req.taskType}`),
      );
      return;
    }
    if (typeStatus === 'gone') {
      this.refuse(
        reply,
        new DispatcherError(
          'no_capable_worker',
          `no connected worker serves task type ${req.taskType}; retry later`,
          NO_WORKER_RETRY_AFTER_S,
        ),
      );
      return;
    }
    // A type every serving worker announced label-free is routed without a label (no label queue,
    // no eviction, no hit or miss) and needs no repository check.
    const labelFree = router.isLabelFree(req.taskType);
    const timeoutMs = req.timeoutMs ?? options.taskTimeoutMs;
    const task: PendingTask = {
      spec: {
        id: req.taskId,
        label: labelFree ? NO_LABEL : req.label,
        taskType: req.taskType,
        ...(req.tenant === undefined ? {} : { tenant: req.tenant }),
        ...(req.priority ? { priority: req.priority } : {}),
      },
      label: req.label,
      parametersJson: req.parametersJson,
      inferRequest: req.inferRequest,
      inferHeaderLength: req.inferHeaderLength ?? 0,
      reply,
      receivedAt: performance.now(),
      deadlineUnixMs: Date.now() + timeoutMs,
      timer: setTimeout(() => this.onTimeout(req.taskId, timeoutMs), timeoutMs).unref(),
      onSent: req.onSent,
      attempt: 1,
      workerId: undefined,
      losses: 0,
    };
    this.pending.set(req.taskId, task);
    if (repository && !labelFree) {
      const known = repository.cached(req.label);
      if (known === undefined) {
        repository.has(req.label).then(
          (exists) => this.afterLabelCheck(task, exists),
          (err: unknown) => {
            this.deps.logger.error(
              { err, event: 'repository_check_failed', label: req.label },
              'repository check failed',
            );
            this.afterLabelCheck(task, true);
          },
        );
        return;
      }
      if (!known) {
        this.fail(
          task,
          new DispatcherError('label_not_found', `the model repository has no label ${req.label}`),
        );
        return;
      }
    }
    this.admit(task);
  }

  /** The producer went away: a queued task is dropped, an in-flight one runs to no one. */
  abandon(taskId: string): void {
    const task = this.pending.get(taskId);
    if (!task) return;
    this.deps.router.cancel(taskId);
    this.finish(task, 'abandoned');
    this.deps.onAbandoned?.(taskId);
  }

  /**
   * Cancels a task (DELETE /tasks/{id}): a queued one leaves its queue, a running one gets a
   * CancelTask on its worker (whose `cancelled` result then only frees the slot). Its producer hears
   * `task_cancelled`; the task is never sent again. Returns where it was.
   */
  cancel(taskId: string): 'queued' | 'in_flight' | 'unknown' {
    const task = this.pending.get(taskId);
    if (!task) return 'unknown';
    const where = this.deps.router.cancel(taskId);
    if (where === 'in_flight' && task.workerId !== undefined)
      this.deps.workers.cancelTask(task.workerId, taskId);
    this.fail(task, new DispatcherError('task_cancelled', `task ${taskId} was cancelled`));
    return where === 'in_flight' ? 'in_flight' : 'queued';
  }

  /** A worker's Hello was accepted. */
  onWorkerJoined(info: WorkerInfo): void {
    const { router, logger } = this.deps;
    let decisions: Decision[];
    try {
      // A quarantined worker that reconnects is registered, but takes no tasks until released.
      const quarantined = this.deps.quarantine?.isQuarantined(info.id) === true;
      decisions = router.addWorker(performance.now(), quarantined ? { ...info, state: 'draining' } : info);
    } catch (err) {
      logger.error({ err, event: 'worker_join_failed', worker_id: info.id }, 'could not register worker');
      return;
    }
    this.apply(decisions);
  }

  /** A worker's connection ended (closed, timed out, protocol error): retry or fail its tasks. */
  onWorkerLeft(workerId: string, reason: string): void {
    const { router, options, metrics } = this.deps;
    this.runningOn.delete(workerId);
    const now = performance.now();
    let orphans = 0;
    for (const orphan of router.removeWorker(now, workerId)) {
      const task = this.pending.get(orphan.task.id);
      if (!task || task.workerId !== workerId) continue;
      orphans++;
      task.workerId = undefined;
      task.losses++;
      // Never again on this worker; and a task that was running on two workers that were both
      // lost is treated as poison (e.g. an output that stalls whoever runs it): it fails here
      // instead of walking through the fleet.
      this.avoid(task, workerId);
      if (task.losses > 1 || task.attempt >= options.maxAttempts) {
        const detail =
          `worker ${workerId} was lost while running the task (${reason}); ` +
          `gave up after ${task.attempt} attempt${task.attempt === 1 ? '' : 's'}` +
          (task.losses > 1
            ? ': the second worker lost while running it (a task that takes workers down is not passed on)'
            : '');
        this.fail(task, new DispatcherError('worker_lost', detail));
        continue;
      }
      task.attempt++;
      metrics.taskRetries.inc();
      this.resubmit(task, now);
    }
    if (orphans > 0) this.strike(workerId, 'lost_with_tasks', now);
    if (this.retiring.size > 0) this.retired(workerId, undefined);
  }

  /** A worker's TaskResult. */
  onTaskResult(workerId: string, result: TaskResult): void {
    const { router, metrics, options } = this.deps;
    const now = performance.now();
    const code = result.error?.code;
    if (code === 'stale_leader' && this.deps.onStaleLeader) {
      // A newer leader exists: free the slot and let the replication step down (handOver follows).
      this.apply(router.taskFinished(now, workerId, result.taskId, {}));
      this.deps.onStaleLeader(workerId, result.taskId);
      return;
    }
    if (this.adopted.size > 0) this.adopted.delete(result.taskId);
    const rule = code === undefined ? undefined : taskErrorRule(code);
    // Our own record of what was sent says whether the task went label-free (the worker's echo of
    // the label is not trusted for counting), and whether it is in flight there at all: a result
    // for a task that already ended (a worker re-sends recent results to a new leader; a timed-out
    // or re-routed attempt) was counted when the task ended, and is not counted again.
    const sent = router.inFlightTask(result.taskId);
    if (sent !== undefined && sent.workerId === workerId && sent.task.label !== NO_LABEL) {
      if (result.labelMiss) metrics.labelMisses.inc();
      else if (rule === undefined || rule.ran) metrics.labelHits.inc();
    }
    const started = performance.now();
    const decisions = router.taskFinished(now, workerId, result.taskId, {
      errorCode: code,
      labelMiss: result.labelMiss,
      loadMs: result.loadMs,
      runMs: result.runMs,
      loadedLabels: result.loadedLabels,
    });
    metrics.routingDecisionSeconds.observe((performance.now() - started) / 1000);
    const task = this.pending.get(result.taskId);
    // Results for tasks no one waits for (timed out, abandoned, re-sent elsewhere) only free the slot.
    if (task && task.workerId === workerId) {
      task.workerId = undefined;
      const bytes = resultBytes(result);
      if (code === undefined && bytes > options.maxResultBytes)
        // Checked before the result is parsed; not retried: the same task gives the same output.
        this.fail(
          task,
          new DispatcherError(
            'result_too_large',
            `worker ${workerId} returned a result of ${bytes} bytes; the limit is ${options.maxResultBytes} (MAX_RESULT_BYTES)`,
          ),
        );
      else if (code === undefined || rule === undefined) this.complete(task, workerId, result);
      else if (rule.retry === 'reroute') {
        metrics.taskRetries.inc();
        this.resubmit(task, now);
      } else if (
        rule.retry === 'next_attempt' &&
        task.attempt < options.maxAttempts &&
        this.avoidAndFindOther(task, workerId)
      ) {
        task.attempt++;
        metrics.taskRetries.inc();
        this.resubmit(task, now);
      } else {
        this.fail(task, workerFailure(code, result.error?.message ?? '', workerId));
      }
    } else {
      if (!task) this.deps.onUnknownResult?.(workerId, result);
      this.deps.logger.debug(
        { event: 'result_for_unknown_task', task_id: result.taskId, worker_id: workerId },
        'result for a task no one waits for: ignored',
      );
    }
    this.apply(decisions);
  }

  /**
   * A model was overwritten: every worker holding `label` unloads it, so none serves the old
   * version. Resolves once each confirmed (LabelEvent `evicted`, or it left), or at `timeoutMs`
   * with the ids still pending.
   */
  retireLabel(label: string, timeoutMs: number): Promise<{ refreshed: string[]; pending: string[] }> {
    const decisions = this.deps.router.retireLabel(performance.now(), label);
    const ids = decisions.map((d) => (d.type === 'unload' ? d.workerId : '')).filter((id) => id !== '');
    if (ids.length === 0) return Promise.resolve({ refreshed: [], pending: [] });
    return new Promise((resolve) => {
      const waiting = new Set(ids);
      let set = this.retiring.get(label);
      if (!set) this.retiring.set(label, (set = new Set()));
      const entry = {
        waiting,
        done: () => {
          clearTimeout(timer);
          set.delete(entry);
          if (set.size === 0 && this.retiring.get(label) === set) this.retiring.delete(label);
          resolve({ refreshed: ids.filter((id) => !waiting.has(id)), pending: [...waiting] });
        },
      };
      const timer = setTimeout(() => entry.done(), timeoutMs).unref();
      set.add(entry);
      this.apply(decisions);
    });
  }

  /** A worker confirmed it no longer holds `label` (or it left): retireLabel stops waiting for it. */
  private retired(workerId: string, label: string | undefined): void {
    for (const [l, set] of this.retiring) {
      if (label !== undefined && l !== label) continue;
      for (const entry of [...set]) {
        entry.waiting.delete(workerId);
        if (entry.waiting.size === 0) entry.done();
      }
    }
  }

  /** A worker's LabelEvent. */
  onLabelEvent(workerId: string, event: LabelEvent): void {
    const { router, metrics } = this.deps;
    if (event.kind === 'unspecified') return;
    if (event.kind === 'evicted' && this.retiring.size > 0) this.retired(workerId, event.label);
    if (event.kind === 'loaded') metrics.labelLoads.inc();
    else if (event.kind === 'evicted') metrics.labelEvictions.inc();
    this.apply(
      router.labelEvent(performance.now(), workerId, {
        kind: event.kind,
        label: event.label,
        durationMs: event.durationMs,
        loadedLabels: event.loadedLabels,
        footprintBytes: event.footprintBytes,
      }),
    );
  }

  /**
   * Failover: Leadership went out to every worker; from now on heartbeats that do not list an
   * adopted task count as misses (see {@link adopt}).
   */
  leadershipAnnounced(): void {
    this.adoptionChecks = true;
  }

  /** A worker's Heartbeat. */
  onHeartbeat(workerId: string, beat: Heartbeat): void {
    if (this.deps.trackRunning) this.runningOn.set(workerId, beat.runningTaskIds ?? []);
    if (this.adopted.size > 0 && this.adoptionChecks) this.checkAdopted(workerId, beat.runningTaskIds ?? []);
    const quarantined = this.deps.quarantine?.isQuarantined(workerId) === true;
    this.apply(
      this.deps.router.updateWorker(performance.now(), workerId, {
        state: beat.state === 'draining' || quarantined ? 'draining' : 'ready',
        loadedLabels: beat.loadedLabels,
      }),
    );
  }

  /** Re-examines waiting tasks and ends due quarantines (called on a timer). */
  tick(): void {
    const now = performance.now();
    for (const id of this.deps.quarantine?.releaseDue(now) ?? []) {
      this.deps.logger.info({ event: 'worker_released', worker_id: id }, 'worker quarantine ended');
      // Its next heartbeat corrects the state if the worker drains on its own.
      this.apply(this.deps.router.updateWorker(now, id, { state: 'ready' }));
    }
    this.apply(this.deps.router.tick(now));
  }

  /** Answers every waiting producer with `code` (shutdown) and forgets their tasks. */
  failAll(code: DispatcherErrorCode, detail?: string): void {
    for (const timer of this.reclaimTimers) clearTimeout(timer);
    this.reclaimTimers.clear();
    for (const task of [...this.pending.values()]) {
      this.deps.router.cancel(task.spec.id);
      this.fail(task, new DispatcherError(code, detail));
    }
  }

  // ---------------------------------------------------------------- internals

  /** Adopted tasks of `workerId` its heartbeat does not list: after enough misses, back to the queue. */
  private checkAdopted(workerId: string, running: readonly string[]): void {
    const now = performance.now();
    for (const [taskId, misses] of this.adopted) {
      const task = this.pending.get(taskId);
      if (!task || task.workerId !== workerId) {
        if (!task) this.adopted.delete(taskId);
        continue;
      }
      if (running.includes(taskId)) {
        this.adopted.delete(taskId); // confirmed: it runs there; its result will come
        continue;
      }
      if (misses + 1 < ADOPTION_MISSES) {
        this.adopted.set(taskId, misses + 1);
        continue;
      }
      this.adopted.delete(taskId);
      this.deps.logger.warn(
        { event: 'adopted_task_missing', task_id: taskId, worker_id: workerId },
        'an adopted task is not running on its worker; it is queued again',
      );
      this.apply(this.deps.router.taskFinished(now, workerId, taskId, {}));
      task.workerId = undefined;
      task.attempt++;
      this.deps.metrics.taskRetries.inc();
      this.resubmit(task, now);
    }
  }

  private afterLabelCheck(task: PendingTask, exists: boolean): void {
    if (this.pending.get(task.spec.id) !== task) return; // timed out or abandoned meanwhile
    if (exists) this.admit(task);
    else
      this.fail(
        task,
        new DispatcherError('label_not_found', `the model repository has no label ${task.spec.label}`),
      );
  }

  private admit(task: PendingTask): void {
    const { router, metrics } = this.deps;
    const started = performance.now();
    const decisions = router.submit(started, task.spec);
    metrics.routingDecisionSeconds.observe((performance.now() - started) / 1000);
    this.apply(decisions);
  }

  /** The task is never sent to `workerId` again. */
  private avoid(task: PendingTask, workerId: string): void {
    const avoid = new Set(task.spec.avoidWorkers);
    avoid.add(workerId);
    task.spec = { ...task.spec, avoidWorkers: avoid };
  }

  /**
   * Avoids `workerId` from now on and says whether another connected worker could take the task:
   * with none, a failed load (e.g. a broken config.pbtxt) fails at once instead of waiting out the
   * label's back-off or the task's deadline.
   */
  private avoidAndFindOther(task: PendingTask, workerId: string): boolean {
    this.avoid(task, workerId);
    const { router } = this.deps;
    for (const w of router.workers()) if (router.registry.mayTake(w, task.spec)) return true;
    return false;
  }

  /** Counts a strike against a worker; quarantines it (no new tasks) when it has too many. */
  private strike(workerId: string, reason: StrikeReason, now: number): void {
    const start = this.deps.quarantine?.strike(workerId, reason, now);
    if (!start) return;
    this.deps.metrics.workerQuarantines.inc({ reason });
    this.deps.logger.warn(
      { event: 'worker_quarantined', worker_id: workerId, reason, cooldown_ms: start.cooldownMs },
      'worker quarantined: no new tasks until the cool-down ends',
    );
    this.apply(this.deps.router.updateWorker(now, workerId, { state: 'draining' }));
  }

  /** A timed-out task's worker never answered: its slot stops counting, so the worker is routed to again. */
  private reclaimSlot(workerId: string, taskId: string): void {
    const sent = this.deps.router.inFlightTask(taskId);
    if (!sent || sent.workerId !== workerId) return; // answered (or gone) meanwhile
    this.deps.logger.warn(
      { event: 'slot_reclaimed', worker_id: workerId, task_id: taskId },
      'worker did not answer a timed-out task; its slot is reclaimed',
    );
    this.apply(this.deps.router.taskFinished(performance.now(), workerId, taskId, {}));
  }

  private resubmit(task: PendingTask, now: number): void {
    this.apply(this.deps.router.submit(now, task.spec, { front: true }));
  }

  /** Carries out the router's decisions. */
  private apply(decisions: Decision[]): void {
    const { workers, logger } = this.deps;
    for (const d of decisions) {
      switch (d.type) {
        case 'send': {
          const task = this.pending.get(d.taskId);
          if (!task) {
            // Cannot happen (cancelled tasks leave the queue); log loudly if it ever does.
            logger.error({ event: 'routing_inconsistency', task_id: d.taskId }, 'sent task is not pending');
            break;
          }
          task.workerId = d.workerId;
          task.onSent?.(d.workerId, task.attempt);
          workers.runTask(d, {
            taskType: task.spec.taskType,
            parametersJson: task.parametersJson,
            attempt: task.attempt,
            deadlineUnixMs: task.deadlineUnixMs,
            ...(task.inferRequest !== undefined
              ? { inferRequest: task.inferRequest, inferHeaderLength: task.inferHeaderLength }
              : {}),
          });
          if (logger.isLevelEnabled('debug'))
            logger.debug(
              {
                event: 'task_routed',
                task_id: d.taskId,
                worker_id: d.workerId,
                label: d.label,
                evict_label: d.evictLabel,
                expect_miss: d.expectMiss,
                attempt: task.attempt,
              },
              'task routed',
            );
          break;
        }
        case 'reject': {
          const task = this.pending.get(d.taskId);
          if (!task) break;
          // A header must stay a small integer even if a worker reported absurd run times.
          const drainS = Math.ceil(this.deps.router.expectedDrainMs() / 1000);
          const retryAfter = Number.isFinite(drainS)
            ? Math.min(MAX_RETRY_AFTER_S, Math.max(1, drainS))
            : MAX_RETRY_AFTER_S;
          this.fail(task, new DispatcherError('queue_full', undefined, retryAfter));
          break;
        }
        case 'load':
        case 'unload':
          workers.labelOrder(d);
          break;
        case 'queue':
          break;
      }
    }
  }

  private complete(task: PendingTask, workerId: string, result: TaskResult): void {
    if (task.inferRequest !== undefined) return this.completeInfer(task, workerId, result);
    const resultJson = result.resultJson ?? 'null';
    if (!isJsonDocument(resultJson)) {
      this.fail(
        task,
        new DispatcherError('worker_error', `worker ${workerId} returned a result that is not JSON`),
      );
      return;
    }
    this.finish(task, 'completed', {
      ok: true,
      completed: {
        taskId: task.spec.id,
        workerId,
        label: task.label,
        labelMiss: result.labelMiss,
        loadMs: result.loadMs,
        runMs: result.runMs,
        attempts: task.attempt,
        resultJson,
      },
    });
  }

  /** A `kserve_infer` answer: the worker's bytes go to the producer as they came. */
  private completeInfer(task: PendingTask, workerId: string, result: TaskResult): void {
    const body = result.inferResponse;
    const headerLength = result.inferHeaderLength ?? 0;
    if (body === undefined || headerLength > body.byteLength) {
      const why = body === undefined ? 'no infer response' : 'an infer header longer than the body';
      this.fail(task, new DispatcherError('worker_error', `worker ${workerId} returned ${why}`));
      return;
    }
    this.finish(task, 'completed', {
      ok: true,
      inferred: {
        taskId: task.spec.id,
        workerId,
        label: task.label,
        labelMiss: result.labelMiss,
        loadMs: result.loadMs,
        runMs: result.runMs,
        attempts: task.attempt,
        body,
        headerLength,
      },
    });
  }

  private fail(task: PendingTask, error: DispatcherError): void {
    this.finish(task, error.code, { ok: false, error });
  }

  private refuse(reply: TaskReply, error: DispatcherError): void {
    this.deps.metrics.tasks.inc({ outcome: error.code });
    reply({ ok: false, error });
  }

  /** Takes the task out of the table and answers its producer (`outcome` undefined: no one waits). */
  private finish(task: PendingTask, outcomeName: string, outcome?: TaskOutcome): void {
    clearTimeout(task.timer);
    this.pending.delete(task.spec.id);
    this.deps.metrics.tasks.inc({ outcome: outcomeName });
    this.deps.logger.info(
      {
        event: 'task_finished',
        task_id: task.spec.id,
        outcome: outcomeName,
        latency_ms: Math.round((performance.now() - task.receivedAt) * 1000) / 1000,
        attempts: task.attempt,
      },
      'task finished',
    );
    if (outcome !== undefined) task.reply(outcome);
    if (this.pending.size === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private onTimeout(taskId: string, timeoutMs: number): void {
    const task = this.pending.get(taskId);
    if (!task) return;
    const where = this.deps.router.cancel(taskId);
    const workerId = task.workerId;
    if (where === 'in_flight' && workerId !== undefined) {
      const timer = setTimeout(() => {
        this.reclaimTimers.delete(timer);
        this.reclaimSlot(workerId, taskId);
      }, this.deps.options.slotReclaimGraceMs).unref();
      this.reclaimTimers.add(timer);
      this.strike(workerId, 'task_timeout', performance.now());
    }
    const detail =
      where === 'in_flight'
        ? `the task did not finish within ${timeoutMs} ms (running on worker ${task.workerId})`
        : `the task did not finish within ${timeoutMs} ms (still waiting for a worker)`;
    this.fail(task, new DispatcherError('task_timeout', detail));
  }
}

/** Bytes of a successful result's payload (result JSON or tensor bytes). */
function resultBytes(result: TaskResult): number {
  // Only JSON results are bounded here (they are parsed and re-sent); a binary infer answer passes
  // through unparsed and is bounded by the link's frame limit.
  const json = result.resultJson;
  return json === undefined ? 0 : Buffer.byteLength(json);
}

/** The producer's error for a task that failed on a worker with `code` (status and code from TASK_ERROR_TABLE). */
export function workerFailure(code: TaskErrorCode, message: string, workerId: string): DispatcherError {
  const producerCode: DispatcherErrorCode = (TASK_ERROR_TABLE[code] ?? TASK_ERROR_TABLE.unspecified)
    .producerCode;
  // Where the producer code differs from the worker's, the worker's code leads the message.
  const detail =
    producerCode === code
      ? message
        ? `${message} (worker ${workerId})`
        : undefined
      : `${code}: ${message || 'no message'} (worker ${workerId})`;
  const status: number = DISPATCHER_ERRORS[producerCode].status;
  return new DispatcherError(producerCode, detail, status === 503 ? NO_WORKER_RETRY_AFTER_S : undefined);
}
