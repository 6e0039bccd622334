// The pending-task table and the retry policy, driven directly: a real Router, a recording
// WorkerLink instead of sockets, real metrics.
import type { TaskErrorCode, TaskResult } from '@smart-routing/proto';
import { pino } from 'pino';
import type { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { resolveOptions, type DispatcherOptions } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { seededRandom } from '../src/routing/random.js';
import { Router } from '../src/routing/router.js';
import type { TaskOutcome } from '../src/task-answer.js';
import { TaskTracker } from '../src/task-tracker.js';
import type { LabelOrderDecision, OutgoingTask, SendDecision } from '../src/worker-messages.js';

interface Sent {
  decision: SendDecision;
  task: OutgoingTask;
}

function setup(options: DispatcherOptions = {}) {
  const router = new Router({ random: seededRandom(1) });
  const metrics = createMetrics(router);
  const sent: Sent[] = [];
  const orders: LabelOrderDecision[] = [];
  const cancels: string[] = [];
  const tracker = new TaskTracker({
    router,
    options: resolveOptions(options),
    metrics,
    logger: pino({ level: 'silent' }),
    repository: undefined,
    workers: {
      runTask: (decision, task) => (sent.push({ decision, task }), true),
      labelOrder: (decision) => (orders.push(decision), true),
      cancelTask: (workerId, taskId) => (cancels.push(`${workerId}:${taskId}`), true),
    },
  });
  const join = (id: string, labels: string[] = [], extra: { labelFreeTaskTypes?: string[] } = {}) =>
    tracker.onWorkerJoined({
      id,
      labelCapacity: 2,
      taskSlots: 1,
      loadedLabels: labels,
      taskTypes: ['embed_texts', 'echo'],
      ...extra,
    });
  /** Submits a task; the promise settles with its outcome. */
  const submit = (taskId: string, label = 'a', taskType = 'embed_texts') =>
    new Promise<TaskOutcome>((resolve) =>
      tracker.submit({ taskId, taskType, label, parametersJson: '{"texts":["hi"]}' }, resolve),
    );
  const result = (workerId: string, taskId: string, fields: Partial<TaskResult> = {}) =>
    tracker.onTaskResult(workerId, {
      taskId,
      label: 'a',
      labelMiss: false,
      loadMs: 0,
      runMs: 3,
      loadedLabels: ['a'],
      resultJson: '{"ok":true}',
      ...fields,
    });
  const fail = (workerId: string, taskId: string, code: TaskErrorCode, extra: Partial<TaskResult> = {}) =>
    result(workerId, taskId, {
      resultJson: undefined,
      error: { code, message: `it went ${code}` },
      ...extra,
    });
  const count = async (c: Counter, labels?: Record<string, string>) =>
    (await c.get()).values.find((v) => !labels || Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      ?.value ?? 0;
  return { router, metrics, tracker, sent, orders, cancels, join, submit, result, fail, count };
}

describe('TaskTracker#cancel', () => {
  it('takes a queued task out of its queue; it is never sent', async () => {
    const s = setup();
    s.join('w1', ['a']);
    const first = s.submit('t1');
    const queued = s.submit('t2');
    expect(s.tracker.cancel('t2')).toBe('queued');
    const outcome = await queued;
    expect(outcome.ok === false && outcome.error.code).toBe('task_cancelled');
    s.result('w1', 't1');
    await first;
    expect(s.sent.map((x) => x.decision.taskId)).toEqual(['t1']);
    expect(s.cancels).toEqual([]);
  });

  it('sends CancelTask for a running task; its cancelled result only frees the slot', async () => {
    const s = setup();
    s.join('w1', ['a']);
    const running = s.submit('t1');
    expect(s.tracker.cancel('t1')).toBe('in_flight');
    expect(s.cancels).toEqual(['w1:t1']);
    const outcome = await running;
    expect(outcome.ok === false && outcome.error.code).toBe('task_cancelled');
    s.fail('w1', 't1', 'cancelled');
    expect(s.router.inFlightTask('t1')).toBeUndefined();
    const next = s.submit('t2');
    expect(s.sent.map((x) => x.decision.taskId)).toEqual(['t1', 't2']);
    s.result('w1', 't2');
    expect((await next).ok).toBe(true);
    expect(s.tracker.cancel('t9')).toBe('unknown');
  });
});

describe('TaskTracker#submit', () => {
  it('sends the task with attempt 1 and answers with the worker’s result text', async () => {
    const s = setup();
    s.join('w1', ['a']);
    const outcome = s.submit('t1');
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]!.decision).toMatchObject({
      taskId: 't1',
      workerId: 'w1',
      label: 'a',
      evictLabel: undefined,
    });
    expect(s.sent[0]!.task).toMatchObject({
      taskType: 'embed_texts',
      parametersJson: '{"texts":["hi"]}',
      attempt: 1,
    });
    s.result('w1', 't1', { resultJson: '{"v": 1.0}', runMs: 4 });
    expect(await outcome).toEqual({
      ok: true,
      completed: {
        taskId: 't1',
        workerId: 'w1',
        label: 'a',
        labelMiss: false,
        loadMs: 0,
        runMs: 4,
        attempts: 1,
        resultJson: '{"v": 1.0}',
      },
    });
    expect(s.tracker.size).toBe(0);
    expect(await s.count(s.metrics.tasks, { outcome: 'completed' })).toBe(1);
  });

  it('refuses a duplicate task id, an unknown type, and anything once it stops admitting', async () => {
    const s = setup({ shutdownGraceMs: 2500 });
    s.join('w1', ['a']);
    void s.submit('t1');
    const dup = await s.submit('t1');
    expect(dup.ok ? undefined : [dup.error.code, dup.error.status]).toEqual(['duplicate_task_id', 409]);
    const unknown = await s.submit('t2', 'a', 'nope');
    expect(unknown.ok ? undefined : unknown.error.code).toBe('unknown_task_type');
    s.tracker.stopAdmitting();
    const late = await s.submit('t3');
    expect(late.ok ? undefined : [late.error.code, late.error.retryAfterS]).toEqual(['shutting_down', 3]);
  });

  it('answers 504 at the deadline and frees the producer even if the worker never reports', async () => {
    const s = setup({ taskTimeoutMs: 1 });
    s.join('w1', ['a']);
    const outcome = await s.submit('t1');
    expect(outcome.ok ? undefined : [outcome.error.code, outcome.error.status]).toEqual([
      'task_timeout',
      504,
    ]);
    expect(outcome.ok ? '' : outcome.error.message).toMatch(/running on worker w1/);
    // The late result only frees the slot.
    s.result('w1', 't1');
    expect(s.router.worker('w1')!.inFlight.size).toBe(0);
  });
});

describe('TaskTracker retry policy (TASK_ERROR_TABLE)', () => {
  it('re-routes draining and no_slot without using up an attempt', async () => {
    const s = setup({ maxAttempts: 1 });
    s.join('w1', ['a']);
    s.join('w2', ['a']);
    const outcome = s.submit('t1');
    const first = s.sent[0]!.decision.workerId;
    s.fail(first, 't1', 'no_slot');
    expect(s.sent).toHaveLength(2);
    const second = s.sent[1]!;
    expect(second.decision.workerId).not.toBe(first);
    expect(second.task.attempt).toBe(1);
    s.result(second.decision.workerId, 't1');
    expect((await outcome).ok).toBe(true);
    expect(await s.count(s.metrics.taskRetries)).toBe(1);
  });

  it('retries a failed load as the next attempt, then fails 502 worker_error naming the worker’s code', async () => {
    const s = setup({ maxAttempts: 2 });
    s.join('w1');
    s.join('w2');
    const outcome = s.submit('t1');
    s.fail(s.sent[0]!.decision.workerId, 't1', 'label_load_failed', { loadedLabels: [] });
    expect(s.sent[1]!.task.attempt).toBe(2);
    expect(s.sent[1]!.decision.workerId).not.toBe(s.sent[0]!.decision.workerId);
    s.fail(s.sent[1]!.decision.workerId, 't1', 'label_load_failed', { loadedLabels: [] });
    const o = await outcome;
    expect(o.ok ? undefined : [o.error.code, o.error.status]).toEqual(['worker_error', 502]);
    expect(o.ok ? '' : o.error.message).toMatch(
      /^label_load_failed: it went label_load_failed \(worker w\d\)$/,
    );
    expect(s.sent).toHaveLength(2);
  });

  it('fails 503 model_server_unavailable with Retry-After once the attempts are used up', async () => {
    const s = setup({ maxAttempts: 1 });
    s.join('w1', ['a']);
    const outcome = s.submit('t1');
    s.fail('w1', 't1', 'model_server_unavailable');
    const o = await outcome;
    expect(o.ok ? undefined : [o.error.code, o.error.status, o.error.retryAfterS]).toEqual([
      'model_server_unavailable',
      503,
      5,
    ]);
    // The worker is blocked until its next report.
    expect(s.router.worker('w1')!.blocked).toBe(true);
  });

  it('fails at once for codes that are not retried, with the table’s producer code', async () => {
    const s = setup({ maxAttempts: 3 });
    s.join('w1', ['a']);
    const expected: [TaskErrorCode, string, number][] = [
      ['bad_parameters', 'bad_parameters', 400],
      ['label_not_found', 'label_not_found', 404],
      ['inference_failed', 'worker_error', 502],
      ['unspecified', 'worker_error', 502],
    ];
    for (const [i, [code, producerCode, status]] of expected.entries()) {
      const outcome = s.submit(`t${i}`);
      s.fail('w1', `t${i}`, code);
      const o = await outcome;
      expect(o.ok ? undefined : [o.error.code, o.error.status], code).toEqual([producerCode, status]);
    }
    expect(s.sent).toHaveLength(expected.length);
  });

  it('retries the tasks of a lost worker at the front, then fails worker_lost', async () => {
    const s = setup({ maxAttempts: 2 });
    s.join('w1', ['a']);
    const outcome = s.submit('t1');
    s.tracker.onWorkerLeft('w1', 'test');
    expect(s.sent).toHaveLength(1);
    s.join('w2');
    expect(s.sent[1]!).toMatchObject({ decision: { workerId: 'w2' }, task: { attempt: 2 } });
    s.tracker.onWorkerLeft('w2', 'test again');
    const o = await outcome;
    expect(o.ok ? undefined : o.error.code).toBe('worker_lost');
    expect(o.ok ? '' : o.error.message).toMatch(/worker w2 was lost .*test again.*after 2 attempts/);
  });
});

describe('TaskTracker counting (one message per fact)', () => {
  it('counts hits and misses from TaskResults, loads and evictions from LabelEvents, label-free tasks neither', async () => {
    const s = setup();
    s.join('w1', ['a'], { labelFreeTaskTypes: ['echo'] });
    const hit = s.submit('hit');
    s.result('w1', 'hit');
    await hit;
    const miss = s.submit('miss', 'b');
    s.tracker.onLabelEvent('w1', {
      kind: 'loaded',
      label: 'b',
      durationMs: 40,
      message: '',
      loadedLabels: ['b', 'a'],
      footprintBytes: 0,
    });
    s.result('w1', 'miss', { label: 'b', labelMiss: true, loadMs: 999, loadedLabels: ['b', 'a'] });
    await miss;
    const failedLoad = s.submit('failed', 'c');
    s.fail('w1', 'failed', 'bad_parameters', { labelMiss: false });
    await failedLoad;
    const free = s.submit('free', 'zzz', 'echo');
    expect(s.sent.at(-1)!.decision.label).toBe('');
    s.result('w1', 'free', { label: '', labelMiss: false });
    expect((await free).ok).toBe(true);
    expect(await s.count(s.metrics.labelHits)).toBe(2); // hit, and bad_parameters (it ran)
    expect(await s.count(s.metrics.labelMisses)).toBe(1);
    expect(await s.count(s.metrics.labelLoads)).toBe(1);
    // The load time comes from the LabelEvent (40), not the result's load_ms (999).
    expect(s.router.costs.loadMs('b')).toBe(40);
  });

  it('regression (failover chaos, inflated labelHits): a result re-sent for a task that ended is not counted again', async () => {
    // A worker re-sends its recent results to a new leader; the leader already finished the task
    // (the first copy arrived): the outcome ignored the copy, but the hit counter counted it.
    const s = setup();
    s.join('w1', ['a']);
    const t = s.submit('t1');
    s.result('w1', 't1');
    expect((await t).ok).toBe(true);
    s.result('w1', 't1'); // the same result again
    s.result('w1', 't1', { labelMiss: true });
    s.result('w1', 'never-sent');
    expect(await s.count(s.metrics.labelHits)).toBe(1);
    expect(await s.count(s.metrics.labelMisses)).toBe(0);
  });

  it('regression (failover chaos, reRun): heartbeats before the Leadership went out are no misses of an adopted task', async () => {
    const s = setup();
    s.join('w1', ['a']);
    const adopt = (taskId: string) =>
      new Promise<TaskOutcome>((resolve) =>
        expect(
          s.tracker.adopt(
            { taskId, taskType: 'embed_texts', label: 'a', parametersJson: '{}' },
            'w1',
            1,
            resolve,
          ),
        ).toBe(true),
      );
    const beat = () =>
      s.tracker.onHeartbeat('w1', {
        inFlight: 0,
        state: 'ready',
        loadedLabels: ['a'],
        pingId: 0,
        runningTaskIds: [],
      });
    const first = adopt('ad1');
    // Sent before the worker heard of this leader: they list nothing, and say nothing of ad1.
    beat();
    beat();
    beat();
    expect(s.sent).toEqual([]);
    s.tracker.leadershipAnnounced();
    s.result('w1', 'ad1'); // the result the worker sends again on hearing it
    expect((await first).ok).toBe(true);
    expect(s.sent).toEqual([]);
    // After the announcement, a task its worker's heartbeats keep leaving out is queued again.
    const second = adopt('ad2');
    beat();
    beat();
    expect(s.sent.map((x) => x.decision.taskId)).toEqual(['ad2']);
    s.result('w1', 'ad2');
    expect((await second).ok).toBe(true);
  });

  it('fails a task whose result is not JSON with 502 worker_error', async () => {
    const s = setup();
    s.join('w1', ['a']);
    const outcome = s.submit('t1');
    s.result('w1', 't1', { resultJson: '{"half":' });
    const o = await outcome;
    expect(o.ok ? undefined : [o.error.code, o.error.message]).toEqual([
      'worker_error',
      'worker w1 returned a result that is not JSON',
    ]);
  });
});
