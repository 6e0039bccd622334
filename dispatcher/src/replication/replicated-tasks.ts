/**
 * Producer tasks in replicated mode (issue 13): any replica accepts them, only the leader routes.
 *
 *   POST /run-task on any replica ─> store.create (mode sync, origin, deadlineAt)
 *       leader:  TaskTracker.submit ─> store.finish ─> answer (and PUBLISH done to a remote origin)
 *       standby: XADD ─> wait for done:<self> (or the store, re-read on a slow timer) ─> answer
 *   a task_id the store knows: final -> the stored outcome; queued / running -> wait for its outcome
 *   stream entry (leader) ─> store.get: queued sync -> run; queued async -> backlog; ended -> cancel here
 *   failover (leader) ─> store.unfinished(): queued -> route; running on a connected worker -> adopt
 *
 * KServe v2 on a standby: an infer is a stored `kserve_infer` task like the above whose body bytes
 * live in Redis keys of their own (infer-bytes.ts); metadata (`kserve_metadata`) is a JSON task.
 *
 *   standby: SET request bytes ─> store.create ─> XADD ─> wait for done:<self> ─> GET response bytes
 *   leader:  GET request bytes ─> TaskTracker.submit (inferRequest) ─> SET response bytes ─> store.finish ─> PUBLISH
 *
 * The leader's own v2 calls are not stored (its producers' connections end with it anyway).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AsyncTasks } from '../async-tasks/async-tasks.js';
import { DispatcherError } from '../errors.js';
import { KSERVE_INFER_TASK } from '../kserve-front/fleet.js';
import type { DispatcherMetrics } from '../metrics.js';
import type { TaskResult } from '@smart-routing/proto';
import { isJsonDocument, storedOutcome, storedRun, type TaskOutcome } from '../task-answer.js';
import { REDIS_STORE_UNAVAILABLE } from '../task-store/redis-store.js';
import { isFinalStatus, type TaskRecord, type TaskStore } from '../task-store/task-store.js';
import {
  ENDED_ELSEWHERE,
  HANDED_OVER,
  type RunTaskRequest,
  type TaskReply,
  type TaskTracker,
} from '../task-tracker.js';
import type { InferBody, InferBytes } from './infer-bytes.js';
import type { TaskStream } from './task-stream.js';

/** How often a waiting replica re-reads the store besides the done channel (ms). */
const FALLBACK_POLL_MS = 1000;
/** How long past its deadline a waiting replica still waits for the leader's own timeout answer (ms). */
const DEADLINE_GRACE_MS = 1000;
/** How long past its deadline a forwarded infer's request bytes are kept: a new leader may adopt it (ms). */
const INFER_REQUEST_GRACE_MS = 30_000;
/** How long a forwarded infer's response bytes wait for their standby to read them (ms). */
const INFER_RESPONSE_TTL_MS = 60_000;

/** What {@link ReplicatedTasks} needs. */
export interface ReplicatedTasksDeps {
  readonly replicaId: string;
  readonly store: TaskStore;
  readonly stream: TaskStream;
  /** The bodies of forwarded v2 infers. */
  readonly bytes: InferBytes;
  readonly tracker: TaskTracker;
  readonly asyncTasks: AsyncTasks;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  /** Whether this replica leads now. */
  readonly isLeader: () => boolean;
  /** `taskTimeoutMs`: a sync task's deadline when the request sets none. */
  readonly taskTimeoutMs: number;
}

/** The replicated paths of `/run-task`, forwarded tasks and failover adoption. */
export class ReplicatedTasks {
  private readonly writes = new Set<Promise<unknown>>();
  private readonly waits = new Set<() => void>();
  /** Sync tasks that ended here whose outcome is being written: the store still says running. */
  private readonly ending = new Set<string>();
  private closed = false;

  constructor(private readonly deps: ReplicatedTasksDeps) {}

  /** POST /run-task on any replica (the route's `submit`). */
  submitSync(req: RunTaskRequest, reply: TaskReply): void {
    const { store, logger, taskTimeoutMs, tracker } = this.deps;
    if (!tracker.isAdmitting || this.closed) {
      reply({ ok: false, error: new DispatcherError('shutting_down', undefined, 1) });
      return;
    }
    const now = Date.now();
    const deadlineAt = now + (req.timeoutMs ?? taskTimeoutMs);
    store
      .create({
        taskId: req.taskId,
        taskType: req.taskType,
        label: req.label,
        parametersJson: req.parametersJson,
        mode: 'sync',
        priority: req.priority ?? 0,
        queuedAt: now,
        origin: this.deps.replicaId,
        deadlineAt,
        ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
      })
      .then(
        (created) => {
          if (!created.created) return this.answerKnown(created.existing, reply);
          const record: TaskRecord = { ...createdRecord(req, now, deadlineAt, this.deps.replicaId) };
          if (this.deps.isLeader()) return this.run(record, reply);
          this.deps.metrics.forwardedTasks.inc();
          this.waitFor(req.taskId, deadlineAt, reply);
          this.track(this.deps.stream.forward(req.taskId));
        },
        (err: unknown) => {
          logger.error({ err, event: 'task_store_failed', op: 'create' }, 'task store failed');
          reply({
            ok: false,
            error: new DispatcherError('task_store_unavailable', REDIS_STORE_UNAVAILABLE, 1),
          });
        },
      );
  }

  /** Whether a standby should forward an async task (the AsyncTasks `forward` hook); XADDs it when so. */
  forwardAsync(taskId: string): boolean {
    if (this.deps.isLeader()) return false;
    this.deps.metrics.forwardedTasks.inc();
    this.track(this.deps.stream.forward(taskId));
    return true;
  }

  /**
   * A KServe v2 infer on a standby (the v2 front's forwarding): its body goes to Redis, its task to
   * the store and the stream; `reply` gets the leader's outcome, with the worker's bytes. Returns
   * the abandon (the client went away): the stored task ends `cancelled`, the leader is told.
   */
  forwardInfer(model: string, infer: InferBody, tenant: string | undefined, reply: TaskReply): () => void {
    const { store, bytes, logger, taskTimeoutMs, tracker, replicaId } = this.deps;
    if (!tracker.isAdmitting || this.closed) {
      reply({ ok: false, error: new DispatcherError('shutting_down', undefined, 1) });
      return () => {};
    }
    const taskId = `v2-${randomUUID()}`;
    const now = Date.now();
    const deadlineAt = now + taskTimeoutMs;
    let gone = false;
    let stored = false;
    // The bytes first: a leader that reads the record (stream or failover) finds its body.
    const write = bytes.putRequest(taskId, infer, deadlineAt - now + INFER_REQUEST_GRACE_MS).then(() =>
      store.create({
        taskId,
        taskType: KSERVE_INFER_TASK,
        label: model,
        parametersJson: '{}',
        mode: 'sync',
        priority: 0,
        queuedAt: now,
        origin: replicaId,
        deadlineAt,
        ...(tenant !== undefined ? { tenant } : {}),
      }),
    );
    write.then(
      () => {
        stored = true;
        if (gone) return this.abandonForwarded(taskId);
        this.deps.metrics.forwardedTasks.inc();
        this.waitFor(taskId, deadlineAt, reply, (record) => this.inferAnswerOf(record));
        this.track(this.deps.stream.forward(taskId));
      },
      (err: unknown) => {
        logger.error({ err, event: 'task_store_failed', op: 'create' }, 'task store failed');
        reply({
          ok: false,
          error: new DispatcherError('shutting_down', 'the shared task store cannot be reached', 1),
        });
      },
    );
    return () => {
      if (gone) return;
      gone = true;
      if (stored) this.abandonForwarded(taskId);
    };
  }

  /** The leader read `taskId` from the stream. */
  async onStreamEntry(taskId: string): Promise<void> {
    const { store, tracker, asyncTasks } = this.deps;
    // Runs or ended here, before or during the read: a record read as unfinished may predate our own
    // outcome write (regression: the failover test's sync task adopted again and run twice).
    const here = () => tracker.has(taskId) || asyncTasks.has(taskId) || this.ending.has(taskId);
    const before = here();
    const record = await store.get(taskId);
    this.deps.logger.debug(
      { event: 'forwarded_task_read', task_id: taskId, status: record?.status },
      'forwarded task read from the stream',
    );
    if (!record) return;
    if (isFinalStatus(record.status)) {
      // Cancelled on another replica while it ran here: stop it on its worker. Ended there (its
      // result reached an old leader): drop it here, it is not run again.
      if (tracker.has(taskId)) {
        if (record.status === 'cancelled') tracker.cancel(taskId);
        else tracker.forget(taskId);
      }
      return;
    }
    if (before || here()) return;
    // Handed over by a replica that stopped leading: it may be running on its worker.
    await this.takeOver(record);
  }

  /**
   * Failover: routes what the store holds unfinished. Queued tasks are routed; running ones are
   * adopted on their worker when it is connected, else queued again. Resolves the counts.
   */
  async adoptUnfinished(): Promise<{ queued: number; adopted: number }> {
    const { store, tracker, asyncTasks, logger } = this.deps;
    let queued = 0;
    let adopted = 0;
    const records = await store.unfinished();
    // Every forwarded infer's body at once (one pipelined round trip), not one GET per adoption:
    // Leadership goes out after this loop, and until then an adopted task misses its worker's
    // heartbeats (the worker re-sends recent results only once told; chaos: a v2 infer re-run).
    const bodies = new Map<string, InferBody | undefined>();
    await Promise.all(
      records.filter(isForwardedInfer).map((r) =>
        this.deps.bytes.getRequest(r.taskId).then(
          (body) => void bodies.set(r.taskId, body),
          () => undefined, // read again in takeOver
        ),
      ),
    );
    for (const record of records) {
      if (tracker.has(record.taskId) || asyncTasks.has(record.taskId)) continue;
      if (await this.takeOver(record, bodies)) adopted++;
      else queued++;
    }
    logger.info({ event: 'tasks_adopted', queued, adopted }, 'unfinished tasks taken over');
    return { queued, adopted };
  }

  /** An unfinished task another replica had: adopted on its worker (true) or routed as queued. */
  private async takeOver(
    record: TaskRecord,
    bodies?: ReadonlyMap<string, InferBody | undefined>,
  ): Promise<boolean> {
    let infer: InferBody | undefined;
    if (isForwardedInfer(record)) {
      // A forwarded v2 infer: its body from Redis (a /run-task of that type has none: JSON as ever).
      infer = bodies?.has(record.taskId)
        ? bodies.get(record.taskId)
        : await this.deps.bytes.getRequest(record.taskId);
      const { tracker, asyncTasks } = this.deps;
      if (tracker.has(record.taskId) || asyncTasks.has(record.taskId) || this.ending.has(record.taskId))
        return false;
    }
    // A queued one may be running all the same: the old leader died between its RunTask and the
    // store write; the workers' heartbeats (sent to every replica) say where.
    const workerId =
      record.status === 'running' ? record.workerId : this.deps.tracker.runningWorkerOf(record.taskId);
    if (workerId !== undefined) {
      const took =
        record.mode === 'async'
          ? this.deps.asyncTasks.adoptRunning(record, workerId)
          : this.adoptSync(record, workerId, infer);
      this.deps.logger.info(
        { event: 'task_adoption', task_id: record.taskId, worker_id: workerId, adopted: took },
        took ? 'running task adopted on its worker' : 'running task could not be adopted; queued again',
      );
      if (took) return true;
      await this.deps.store.markQueued(record.taskId);
    }
    if (record.mode === 'async') this.deps.asyncTasks.enqueue(record);
    else this.run(record, undefined, infer);
    return false;
  }

  /**
   * A result reached this replica for a task it no longer tracks (it sent the task as the leader,
   * then stepped down): the outcome is written to the store, the origin told, and the leader woken
   * through the stream so it drops its adopted copy instead of running the task again.
   */
  relayResult(workerId: string, result: TaskResult): void {
    if (this.deps.isLeader() || this.closed) return;
    const { store } = this.deps;
    const taskId = result.taskId;
    this.track(
      (async () => {
        const record = await store.get(taskId);
        if (!record || isFinalStatus(record.status)) return;
        const code = result.error?.code;
        // stale_leader and other refusals did not run it: the leader routes it.
        if (code !== undefined) return;
        const infer = result.inferResponse;
        if (infer !== undefined) {
          const headerLength = result.inferHeaderLength ?? 0;
          if (record.taskType !== KSERVE_INFER_TASK || headerLength > infer.byteLength) return;
          await this.deps.bytes.putResponse(taskId, { body: infer, headerLength }, INFER_RESPONSE_TTL_MS);
        } else if (result.resultJson !== undefined && !isJsonDocument(result.resultJson)) return;
        const changed = await store.finish(taskId, {
          status: 'completed',
          finishedAt: Date.now(),
          ...(infer === undefined ? { resultJson: result.resultJson ?? 'null' } : {}),
          workerId,
          labelMiss: result.labelMiss,
        });
        if (!changed) return;
        if (record.origin === this.deps.replicaId) this.deps.stream.notifyLocal(taskId);
        else if (record.origin !== undefined) await this.deps.stream.publishDone(record.origin, taskId);
        await this.deps.stream.forward(taskId);
      })(),
    );
  }

  /**
   * The producer of a sync task went away (TaskTracker.abandon): the stored task ends `cancelled`,
   * so no later leader adopts or re-runs it.
   */
  abandoned(taskId: string): void {
    this.track(
      this.deps.store.finish(taskId, {
        status: 'cancelled',
        finishedAt: Date.now(),
        error: { code: 'task_cancelled', message: 'the producer went away before the task finished' },
      }),
    );
  }

  /** A standby's v2 client went away: its stored task ends `cancelled` and the leader stops it. */
  private abandonForwarded(taskId: string): void {
    this.track(
      (async () => {
        const changed = await this.deps.store.finish(taskId, {
          status: 'cancelled',
          finishedAt: Date.now(),
          error: { code: 'task_cancelled', message: 'the producer went away before the task finished' },
        });
        if (!changed) return;
        this.deps.stream.notifyLocal(taskId);
        await this.deps.stream.forward(taskId);
      })(),
    );
  }

  /** Stops waiting (the answers already given stand) and waits for store writes under way. Safe twice. */
  async close(): Promise<void> {
    this.closed = true;
    for (const stop of [...this.waits]) stop();
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  // ---------------------------------------------------------------- internals

  /** A task_id the store already has: its stored outcome, or wait for it. */
  private answerKnown(record: TaskRecord, reply: TaskReply): void {
    if (isFinalStatus(record.status)) return reply(storedOutcome(record));
    const deadlineAt = record.deadlineAt ?? Date.now() + this.deps.taskTimeoutMs;
    this.waitFor(record.taskId, deadlineAt, reply);
  }

  /** Runs a stored sync task on this replica (the leader); `reply`: the producer, when it waits here. */
  private run(record: TaskRecord, reply: TaskReply | undefined, infer?: InferBody): void {
    const deadlineAt = record.deadlineAt ?? Date.now() + this.deps.taskTimeoutMs;
    this.deps.tracker.submit(this.request(record, deadlineAt, infer), (outcome) =>
      this.settle(record, deadlineAt, outcome, reply),
    );
  }

  private adoptSync(record: TaskRecord, workerId: string, infer: InferBody | undefined): boolean {
    const deadlineAt = record.deadlineAt ?? Date.now() + this.deps.taskTimeoutMs;
    return this.deps.tracker.adopt(
      this.request(record, deadlineAt, infer),
      workerId,
      record.attempts,
      (outcome) => this.settle(record, deadlineAt, outcome, undefined),
    );
  }

  private request(record: TaskRecord, deadlineAt: number, infer: InferBody | undefined): RunTaskRequest {
    const taskId = record.taskId;
    return {
      taskId,
      taskType: record.taskType,
      label: record.label,
      parametersJson: record.parametersJson,
      ...(infer ? { inferRequest: infer.body, inferHeaderLength: infer.headerLength } : {}),
      priority: record.priority,
      ...(record.tenant !== undefined ? { tenant: record.tenant } : {}),
      timeoutMs: Math.max(1, Math.min(2 ** 31 - 1, deadlineAt - Date.now())),
      onSent: (workerId) => this.track(this.deps.store.markRunning(taskId, workerId, Date.now())),
    };
  }

  /** The tracker's answer for a stored sync task: write it, tell its origin, answer the local producer. */
  private settle(
    record: TaskRecord,
    deadlineAt: number,
    outcome: TaskOutcome,
    reply: TaskReply | undefined,
  ): void {
    if (outcome === ENDED_ELSEWHERE) {
      if (reply) this.waitFor(record.taskId, deadlineAt, reply);
      return;
    }
    if (outcome === HANDED_OVER) {
      // This replica stopped leading: the new leader finishes the task (the stream tells it); a
      // local producer waits for it.
      if (reply) this.waitFor(record.taskId, deadlineAt, reply);
      if (!this.closed) this.track(this.deps.stream.forward(record.taskId));
      return;
    }
    this.ending.add(record.taskId);
    // A forwarded infer's bytes before its record ends: the origin reads them once told.
    const write = (
      outcome.ok && 'inferred' in outcome
        ? this.deps.bytes.putResponse(record.taskId, outcome.inferred, INFER_RESPONSE_TTL_MS)
        : Promise.resolve()
    ).then(() => this.deps.store.finish(record.taskId, { ...endingOf(outcome), finishedAt: Date.now() }));
    this.track(write);
    void write.finally(() => this.ending.delete(record.taskId)).catch(() => undefined);
    write.then(
      () => {
        const origin = record.origin;
        if (origin === this.deps.replicaId) this.deps.stream.notifyLocal(record.taskId);
        else if (origin !== undefined) this.track(this.deps.stream.publishDone(origin, record.taskId));
      },
      () => undefined,
    );
    if (reply) {
      // Answer after the write, so a retry with the same task_id finds the outcome stored. When the
      // store already held an ending (written on another replica meanwhile), that one is the answer,
      // the same a retry gets.
      write.then(
        (changed) =>
          changed || record.taskType === KSERVE_INFER_TASK // an infer's bytes are not in its record
            ? reply(outcome)
            : this.answerStored(record.taskId, outcome, reply),
        () => reply(outcome),
      );
    }
  }

  /** Answers the stored ending of `taskId`; `fallback` when the store has none (or cannot be read). */
  private answerStored(taskId: string, fallback: TaskOutcome, reply: TaskReply): void {
    this.deps.store.get(taskId).then(
      (stored) => reply(stored && isFinalStatus(stored.status) ? storedOutcome(stored) : fallback),
      () => reply(fallback),
    );
  }

  /**
   * Waits for a task another replica runs: done channel, a re-read after subscribing, a slow poll,
   * the deadline. `answerOf` turns the ended record into the answer [its stored outcome].
   */
  private waitFor(
    taskId: string,
    deadlineAt: number,
    reply: TaskReply,
    answerOf: (record: TaskRecord) => Promise<TaskOutcome> = (record) =>
      Promise.resolve(storedOutcome(record)),
  ): void {
    const { stream, store, logger } = this.deps;
    let answered = false;
    let reading = false;
    const finish = (outcome: TaskOutcome | undefined) => {
      if (answered) return;
      answered = true;
      unsubscribe();
      clearInterval(poll);
      clearTimeout(deadline);
      this.waits.delete(stop);
      if (outcome) reply(outcome);
    };
    const check = () => {
      if (answered || reading) return;
      reading = true;
      store
        .get(taskId)
        .then(async (record) => {
          if (record && isFinalStatus(record.status)) finish(await answerOf(record));
        })
        .then(
          () => (reading = false),
          (err: unknown) => {
            reading = false;
            logger.warn({ err, event: 'task_store_failed', op: 'get' }, 'task store failed');
          },
        );
    };
    const stop = () =>
      finish({
        ok: false,
        error: new DispatcherError('shutting_down', 'the dispatcher shut down before the task finished', 1),
      });
    const unsubscribe = stream.onDone(taskId, check);
    const poll = setInterval(check, FALLBACK_POLL_MS).unref();
    const deadline = setTimeout(
      () =>
        finish({
          ok: false,
          error: new DispatcherError(
            'task_timeout',
            `the task did not finish within its deadline (run by the leader replica)`,
          ),
        }),
      Math.max(1, Math.min(2 ** 31 - 1, deadlineAt + DEADLINE_GRACE_MS - Date.now())),
    ).unref();
    this.waits.add(stop);
    if (this.closed) return stop();
    check();
  }

  /** A forwarded infer's answer: the worker's bytes from Redis (both keys dropped), or its stored error. */
  private async inferAnswerOf(record: TaskRecord): Promise<TaskOutcome> {
    const infer = await this.deps.bytes.takeResponse(record.taskId);
    if (record.status !== 'completed') return storedOutcome(record);
    if (!infer)
      return {
        ok: false,
        error: new DispatcherError('internal', `the answer of ${record.taskId} is missing in Redis`),
      };
    return {
      ok: true,
      inferred: { ...storedRun(record), body: infer.body, headerLength: infer.headerLength },
    };
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((err: unknown) =>
      this.deps.logger.error({ err, event: 'task_store_failed' }, 'replicated task write failed'),
    );
    this.writes.add(guarded);
    void guarded.finally(() => this.writes.delete(guarded));
  }
}

/** A `kserve_infer` sync task: a standby's forwarded v2 infer, whose body is in Redis. */
function isForwardedInfer(record: TaskRecord): boolean {
  return record.taskType === KSERVE_INFER_TASK && record.mode === 'sync';
}

/** The record `create` just wrote, without reading it back. */
function createdRecord(req: RunTaskRequest, now: number, deadlineAt: number, origin: string): TaskRecord {
  return {
    taskId: req.taskId,
    taskType: req.taskType,
    label: req.label,
    parametersJson: req.parametersJson,
    mode: 'sync',
    priority: req.priority ?? 0,
    queuedAt: now,
    origin,
    deadlineAt,
    status: 'queued',
    attempts: 0,
    ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
  };
}

/** How an outcome is stored. */
function endingOf(outcome: TaskOutcome): {
  status: 'completed' | 'failed' | 'cancelled';
  resultJson?: string;
  workerId?: string;
  labelMiss?: boolean;
  error?: { code: string; message: string };
} {
  if (outcome.ok && 'completed' in outcome) {
    const c = outcome.completed;
    return { status: 'completed', resultJson: c.resultJson, workerId: c.workerId, labelMiss: c.labelMiss };
  }
  // A forwarded infer: its bytes are in their own key (written first).
  if (outcome.ok)
    return {
      status: 'completed',
      workerId: outcome.inferred.workerId,
      labelMiss: outcome.inferred.labelMiss,
    };
  const e = outcome.error;
  return {
    status: e.code === 'task_cancelled' ? 'cancelled' : 'failed',
    error: { code: e.code, message: e.message },
  };
}
