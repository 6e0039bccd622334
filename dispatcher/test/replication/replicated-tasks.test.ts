// Unit test of ReplicatedTasks alone: a memory task store, and stand-ins for the tracker, stream and
// metrics (the integration with real replicas and Redis is in failover.test.ts).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AsyncTasks } from '../../src/async-tasks/async-tasks.js';
import type { DispatcherMetrics } from '../../src/metrics.js';
import type { InferBytes } from '../../src/replication/infer-bytes.js';
import { ReplicatedTasks } from '../../src/replication/replicated-tasks.js';
import type { TaskStream } from '../../src/replication/task-stream.js';
import type { TaskOutcome } from '../../src/task-answer.js';
import { MemoryTaskStore } from '../../src/task-store/memory-store.js';
import type { RunTaskRequest, TaskReply, TaskTracker } from '../../src/task-tracker.js';

/** A leader's ReplicatedTasks whose tracker only records what it was given to run. */
function leaderWith(store: MemoryTaskStore) {
  const submitted: { req: RunTaskRequest; reply: TaskReply }[] = [];
  const tracker = {
    isAdmitting: true,
    has: () => false,
    submit: (req: RunTaskRequest, reply: TaskReply) => submitted.push({ req, reply }),
  } as unknown as TaskTracker;
  const stream = {
    notifyLocal: () => undefined,
    publishDone: () => Promise.resolve(),
    forward: () => Promise.resolve(),
    onDone: () => () => undefined,
  } as unknown as TaskStream;
  const tasks = new ReplicatedTasks({
    replicaId: 'leader-1',
    store,
    stream,
    bytes: {} as InferBytes,
    tracker,
    asyncTasks: { has: () => false } as unknown as AsyncTasks,
    metrics: { forwardedTasks: { inc: () => undefined } } as unknown as DispatcherMetrics,
    logger: pino({ level: 'silent' }),
    isLeader: () => true,
    taskTimeoutMs: 30_000,
  });
  return { tasks, submitted };
}

describe('ReplicatedTasks on the leader', () => {
  it('answers the stored ending when another replica ended the task while it ran here', async () => {
    const store = new MemoryTaskStore();
    const { tasks, submitted } = leaderWith(store);
    const answer = new Promise<TaskOutcome>((resolve) =>
      tasks.submitSync(
        { taskId: 't-1', taskType: 'echo', label: 'a', parametersJson: '{}', timeoutMs: 10_000 },
        resolve,
      ),
    );
    await expect.poll(() => submitted.length).toBe(1);
    // Meanwhile another replica ended it (DELETE /tasks/t-1 there): the store holds `cancelled`.
    expect(
      await store.finish('t-1', {
        status: 'cancelled',
        finishedAt: Date.now(),
        error: { code: 'task_cancelled', message: 'cancelled on replica 2' },
      }),
    ).toBe(true);
    submitted[0]!.reply({
      ok: true,
      completed: {
        taskId: 't-1',
        workerId: 'w-1',
        label: 'a',
        labelMiss: false,
        loadMs: 0,
        runMs: 1,
        attempts: 1,
        resultJson: '{"late":true}',
      },
    });
    const outcome = await answer;
    // The producer hears what a retry with the same task_id would hear, not the late local result.
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.code).toBe('task_cancelled');
    expect((await store.get('t-1'))?.status).toBe('cancelled');
    await tasks.close();
  });

  it('answers its own outcome when it wrote the ending', async () => {
    const store = new MemoryTaskStore();
    const { tasks, submitted } = leaderWith(store);
    const answer = new Promise<TaskOutcome>((resolve) =>
      tasks.submitSync({ taskId: 't-2', taskType: 'echo', label: 'a', parametersJson: '{}' }, resolve),
    );
    await expect.poll(() => submitted.length).toBe(1);
    submitted[0]!.reply({
      ok: true,
      completed: {
        taskId: 't-2',
        workerId: 'w-1',
        label: 'a',
        labelMiss: true,
        loadMs: 5,
        runMs: 1,
        attempts: 1,
        resultJson: '{"x":1}',
      },
    });
    const outcome = await answer;
    expect(outcome.ok && 'completed' in outcome && outcome.completed.loadMs).toBe(5);
    expect((await store.get('t-2'))?.resultJson).toBe('{"x":1}');
    await tasks.close();
  });
});
