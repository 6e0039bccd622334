import { performance } from 'node:perf_hooks';
import { isValidModelName } from '@smart-routing/model-repo';
import type { RunTask, TaskError as WireTaskError } from '@smart-routing/proto';
import type { Logger } from 'pino';
import { errorMessage, TaskError, taskLogLevel } from './errors.js';
import type { ModelCache } from './handlers/model-cache.js';
import { isBinaryTaskResult, type TaskHandler } from './handlers/types.js';
import { LabelLoadError, type LabelManager } from './label-manager.js';
import type { TritonClient } from './triton-client.js';

/**
 * Runs the tasks the dispatcher sends, with no knowledge of the socket they came on:
 *
 *   run(task, deliver) ─ slot? ─ handler? ─ JSON.parse(parameters_json) once ─ handler.parse
 *     ─ label-bound: evict the dispatcher's evict_label ─ ensureLoaded(label) (may evict our LRU)
 *     ─ handler.run ─ JSON.stringify(result) once (a BinaryTaskResult: its bytes as they are)
 *     ─ deliver(outcome) ─ release label, free slot
 *
 * A label-free task type (`echo`) skips the label steps entirely: no unload, no load, never a miss.
 * Without a model server (`labels.bookkeepingOnly`, TRITON_URL=none) labels are bookkeeping for
 * every task that names one, so routing still sees hits and misses there.
 */

/** How one task ended: the content of its TaskResult (the connection adds `loadedLabels`). */
export interface TaskOutcome {
  taskId: string;
  taskType: string;
  /** The label the task named, echoed back (also for label-free tasks). */
  label: string;
  /** The handler's result serialised once, as it goes on the wire; set when neither `error` nor `inferResponse` is. */
  resultJson?: string;
  /** A handler's `BinaryTaskResult` bytes (`kserve_infer`), untouched; set instead of `resultJson`. */
  inferResponse?: Uint8Array;
  /** Bytes of JSON header at the start of `inferResponse` (0: all JSON); set with it. */
  inferHeaderLength?: number;
  /** Why the task failed or was refused; set when no result is. */
  error?: WireTaskError;
  /** True when this task had to load its label first. */
  labelMiss: boolean;
  /** Time spent loading the label for this task, ms (0 on a hit or a label-free task). */
  loadMs: number;
  /** Time spent in the handler, ms. */
  runMs: number;
}

/**
 * Receives a task's outcome while the task still holds its slot and label (so what it reports as
 * loaded is what the task saw). Returns true when it was sent, false when it could not be sent (no
 * link), or the error the task was answered with instead (a result too large to send): the
 * task's one `task_completed` line then reports that failure.
 */
export type OutcomeSink = (outcome: TaskOutcome) => boolean | WireTaskError;

/** Options of `TaskRunner`. */
export interface TaskRunnerOptions {
  /** Logged with every task (`worker_id`). */
  workerId: string;
  /** Concurrent tasks; a task beyond them is refused with `no_slot`. A positive integer. */
  slots: number;
  /** What is loaded; the only way the runner loads or unloads a label. */
  labels: LabelManager;
  /** Handlers by task type (see `createHandlerRegistry`). */
  handlers: ReadonlyMap<string, TaskHandler>;
  /** Per-label metadata and tokenizers, handed to handlers. */
  models: ModelCache;
  /** The model server; undefined in `none` mode. */
  client: TritonClient | undefined;
  /** Receives `label_miss` and `task_completed`. */
  logger: Logger;
}

/** Slots, labels and handlers of one worker: turns a RunTask into a `TaskOutcome`. */
export class TaskRunner {
  /** Concurrent tasks this runner takes. */
  readonly slots: number;
  private readonly o: TaskRunnerOptions;
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  /** Running tasks' abort controllers, by task id (CancelTask). */
  private readonly active = new Map<string, AbortController>();

  constructor(options: TaskRunnerOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1)
      throw new TypeError(`TaskRunner: slots must be a positive integer, got ${options.slots}`);
    this.o = options;
    this.slots = options.slots;
  }

  /** Task types served (Hello.task_types). */
  get taskTypes(): string[] {
    return [...this.o.handlers.keys()];
  }

  /**
   * Task types routed without a label (Hello.label_free_task_types): the handlers marked
   * `labelFree`, or none without a model server, where every label is bookkeeping that routing
   * should still count.
   */
  get labelFreeTaskTypes(): string[] {
    if (this.o.labels.bookkeepingOnly) return [];
    return [...this.o.handlers.values()].filter((h) => h.labelFree).map((h) => h.taskType);
  }

  /** Tasks running now (holding a slot). */
  get inFlight(): number {
    return this.running;
  }

  /** Ids of the tasks running now (Heartbeat.running_task_ids: a new leader adopts them). */
  get runningTaskIds(): string[] {
    return [...this.active.keys()];
  }

  /** Resolves once no task holds a slot (at once when none does). */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Cancels a running task (CancelTask): its handler's `signal` is aborted, its run ends at once
   * with `cancelled` and its slot is freed. False (nothing done) for an unknown or finished id.
   */
  cancel(taskId: string): boolean {
    const controller = this.active.get(taskId);
    if (!controller || controller.signal.aborted) return false;
    controller.abort(new TaskError('cancelled', 'the dispatcher cancelled the task'));
    return true;
  }

  /**
   * Answers a task without running it (`draining`, or any refusal decided by the caller): no slot,
   * no timing, no label.
   */
  refuse(task: RunTask, error: WireTaskError, deliver: OutcomeSink): TaskOutcome {
    return this.deliver(this.outcome(task, { error }, false, 0, 0), deliver);
  }

  /**
   * Runs one task and hands its outcome to `deliver` exactly once. Never rejects: every failure
   * becomes a typed error (`internal` for anything that is not a `TaskError`).
   */
  async run(task: RunTask, deliver: OutcomeSink): Promise<TaskOutcome> {
    if (this.running >= this.slots)
      return this.refuse(
        task,
        { code: 'no_slot', message: `all ${this.slots} task slots are busy` },
        deliver,
      );
    this.running++;
    const controller = new AbortController();
    // A duplicate id (a buggy peer) keeps the first entry: cancel reaches the older run.
    const tracked = !this.active.has(task.taskId);
    if (tracked) this.active.set(task.taskId, controller);
    const { signal } = controller;
    let miss = false;
    let loadMs = 0;
    let runMs = 0;
    let release: (() => void) | undefined;
    let outcome: TaskOutcome;
    try {
      const { taskId, label } = task;
      const handler = this.handler(task.taskType);
      const params = handler.parse(parseParameters(task.parametersJson));
      if (!handler.labelFree && label === '')
        throw new TaskError('bad_parameters', 'the task names no label');
      if (label !== '' && (!handler.labelFree || this.o.labels.bookkeepingOnly)) {
        if (!isValidModelName(label))
          throw new TaskError('label_not_found', `${JSON.stringify(label)} is not a valid model name`);
        await this.evictFirst(task);
        try {
          const loading = this.o.labels.ensureLoaded(label);
          ({ release, miss, loadMs } = await untilAborted(loading, signal).catch((err: unknown) => {
            // Cancelled during the load: the load finishes (it is paid for) and lets go of the label.
            if (signal.aborted)
              loading.then(
                (l) => l.release(),
                () => undefined,
              );
            throw err;
          }));
        } catch (err) {
          // A failed load is no miss (nothing ran), but its time is reported: the label manager's
          // own measurement, the one its load_failed event carries.
          if (err instanceof LabelLoadError) loadMs = err.loadMs;
          throw err;
        }
        if (miss)
          this.o.logger.info(
            {
              event: 'label_miss',
              label,
              task_id: taskId,
              worker_id: this.o.workerId,
              load_ms: round(loadMs),
            },
            'label miss',
          );
      }
      const runStart = performance.now();
      let result: unknown;
      try {
        result = await untilAborted(
          handler.run(params, {
            taskId,
            label,
            client: this.o.client,
            models: this.o.models,
            signal,
            ...(task.inferRequest && task.inferRequest.byteLength > 0
              ? { inferRequest: { body: task.inferRequest, headerLength: task.inferHeaderLength ?? 0 } }
              : {}),
            // The producer stops waiting then: so does the model-server call.
            deadlineUnixMs: task.deadlineUnixMs,
          }),
          signal,
        );
      } finally {
        runMs = performance.now() - runStart;
      }
      outcome = this.outcome(
        task,
        isBinaryTaskResult(result)
          ? { inferResponse: result.body, inferHeaderLength: result.headerLength }
          : { resultJson: JSON.stringify(result ?? null) },
        miss,
        loadMs,
        runMs,
      );
    } catch (err) {
      const error: WireTaskError =
        err instanceof TaskError
          ? { code: err.code, message: err.message }
          : { code: 'internal', message: `internal error: ${errorMessage(err)}` };
      outcome = this.outcome(task, { error }, miss, loadMs, runMs);
    }
    try {
      outcome = this.deliver(outcome, deliver);
    } finally {
      release?.();
      if (tracked) this.active.delete(task.taskId);
      this.running--;
      if (this.running === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
    return outcome;
  }

  private handler(taskType: string): TaskHandler {
    const handler = this.o.handlers.get(taskType);
    if (!handler)
      throw new TaskError(
        'unknown_task_type',
        `task type ${JSON.stringify(taskType)} is not served here (serves ${this.taskTypes.join(', ')})`,
      );
    return handler;
  }

  /** The dispatcher's eviction order, carried out before the load; a failed unload is only logged. */
  private async evictFirst({ label, evictLabel: evict }: RunTask): Promise<void> {
    if (!evict || evict === label || !this.o.labels.isLoaded(evict)) return;
    try {
      await this.o.labels.unload(evict, 'dispatcher order');
    } catch (err) {
      this.o.logger.warn({ event: 'evict_failed', label: evict, message: errorMessage(err) }, 'evict failed');
    }
  }

  private outcome(
    task: RunTask,
    result:
      | { resultJson: string }
      | { inferResponse: Uint8Array; inferHeaderLength: number }
      | { error: WireTaskError },
    labelMiss: boolean,
    loadMs: number,
    runMs: number,
  ): TaskOutcome {
    return {
      taskId: task.taskId,
      taskType: task.taskType,
      label: task.label,
      ...result,
      labelMiss,
      loadMs,
      runMs,
    };
  }

  /** Hands `outcome` to the sink and logs what really went out, once; returns that. */
  private deliver(outcome: TaskOutcome, sink: OutcomeSink): TaskOutcome {
    const sent = sink(outcome);
    if (typeof sent === 'boolean') {
      this.report(outcome, sent);
      return outcome;
    }
    const { resultJson: _json, inferResponse: _bytes, inferHeaderLength: _header, ...rest } = outcome;
    const replaced: TaskOutcome = { ...rest, error: sent };
    this.report(replaced, true);
    return replaced;
  }

  /** One `task_completed` line per task; a refusal is routine (info), a failure is a warning. */
  private report(outcome: TaskOutcome, sent: boolean): void {
    const { error } = outcome;
    const fields = {
      event: 'task_completed',
      task_id: outcome.taskId,
      label: outcome.label,
      worker_id: this.o.workerId,
      task_type: outcome.taskType,
      runtime_ms: round(outcome.runMs),
      load_ms: round(outcome.loadMs),
      label_miss: outcome.labelMiss,
      ok: error === undefined,
      ...(error ? { error_code: error.code, message: error.message } : {}),
      ...(sent ? {} : { result_dropped: true }),
    };
    if (taskLogLevel(error?.code) === 'info') this.o.logger.info(fields, 'task completed');
    else this.o.logger.warn(fields, 'task failed');
  }
}

/**
 * `work`, or a rejection with the abort reason as soon as `signal` aborts (a handler that ignores
 * its signal must not hold the slot); a late rejection of `work` is swallowed.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** The one parse of `parameters_json` on the worker; the handler validates the value it gets. */
function parseParameters(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw new TaskError('bad_parameters', 'parameters_json is not valid JSON');
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
