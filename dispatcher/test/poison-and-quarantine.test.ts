/**
 * Issue 11, items 1 and 2: a poison task does not walk through the fleet, results are bounded
 * before they are parsed, timed-out slots are reclaimed and misbehaving workers are quarantined.
 * Real dispatcher, real WebSockets (fake workers speak the real protocol).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeWorker } from './fake-worker.js';
import { Harness, eventually, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('poison tasks', () => {
  it('regression: a task that takes two workers down fails worker_lost instead of reaching a third', async () => {
    const d = await h.dispatcher({ maxAttempts: 5 });
    const crashers = await Promise.all(
      ['w1', 'w2', 'w3'].map((id) => h.worker({ url: d.url, id, labels: ['a'], answer: false })),
    );
    // Each worker that receives the task dies at once, as a worker stalled by its output would.
    for (const w of crashers)
      void w.waitForTasks(1, 20_000).then(
        () => w.terminate(),
        () => {},
      );
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('worker_lost');
    expect(res.body.error.message).toMatch(/second worker lost/);
    expect(crashers.filter((w) => w.received.length > 0)).toHaveLength(2);
  });

  it('regression: a retried task never goes back to the worker id that was lost with it', async () => {
    const d = await h.dispatcher();
    const first = await FakeWorker.connect({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const pending = post(d.url, '/run-task', task('a'));
    await first.waitForTasks(1);
    first.terminate();
    await eventually(() => d.router.workerCount === 0);
    // The same id comes back (restarted process) and is idle with the label: it must not get the task.
    const again = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    await again.waitFor((f) => f.body === 'welcome');
    const other = await h.worker({ url: d.url, id: 'w2', labels: [] });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.worker_id).toBe('w2');
    expect(again.received).toHaveLength(0);
    expect(other.received).toHaveLength(1);
  });
});

describe('result bounds', () => {
  it('regression: a result over MAX_RESULT_BYTES fails result_too_large and is not retried', async () => {
    const d = await h.dispatcher({ maxResultBytes: 2048 });
    const big = () => JSON.stringify('x'.repeat(4096));
    const w1 = await h.worker({ url: d.url, id: 'w1', labels: ['a'], resultJson: big });
    const w2 = await h.worker({ url: d.url, id: 'w2', labels: ['a'], resultJson: big });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('result_too_large');
    expect(res.body.error.message).toMatch(/4098 bytes; the limit is 2048/);
    expect(w1.received.length + w2.received.length).toBe(1);
    // A small result still goes through.
    const ok = await h.worker({ url: d.url, id: 'w3', labels: ['b'] });
    expect((await post(d.url, '/run-task', task('b'))).status).toBe(200);
    expect(ok.received).toHaveLength(1);
  });
});

describe('timed-out tasks', () => {
  it('regression: the slot of a task the worker never answers is reclaimed after the grace', async () => {
    const d = await h.dispatcher({ taskTimeoutMs: 300, slotReclaimGraceMs: 10, quarantineStrikes: 100 });
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], slots: 1, answer: false });
    const first = await post(d.url, '/run-task', task('a'));
    expect(first.status).toBe(504);
    // Without the reclaim the only slot stays taken forever and this task never reaches the worker.
    void post(d.url, '/run-task', task('a'));
    await w.waitForTasks(2);
  });
});

describe('quarantine', () => {
  it('regression: a worker whose tasks time out gets no new tasks, shows "quarantined", is counted', async () => {
    const d = await h.dispatcher({
      // The good worker's task must finish within it too, on a loaded machine.
      taskTimeoutMs: 1500,
      quarantineStrikes: 2,
      quarantineMs: 600_000,
      heartbeatIntervalMs: 20,
    });
    const swallower = await h.worker({ url: d.url, id: 'bad', labels: ['a'], slots: 8, answer: false });
    const answers = await Promise.all([
      post(d.url, '/run-task', task('a')),
      post(d.url, '/run-task', task('a')),
    ]);
    expect(answers.map((a) => a.status)).toEqual([504, 504]);
    const workers = await get(d.url, '/workers');
    expect(workers.body.find((x: { id: string }) => x.id === 'bad').state).toBe('quarantined');
    const metrics = await get(d.url, '/metrics');
    expect(metrics.body).toMatch(/^smart_routing_quarantined_workers 1$/m);
    expect(metrics.body).toMatch(/^smart_routing_worker_quarantines_total\{reason="task_timeout"\} 1$/m);
    // Its heartbeats (every 20 ms, one more sent here) do not lift the quarantine: a new task for
    // its label goes to a worker that must load it rather than to the idle holder with free slots.
    swallower.send({ heartbeat: { inFlight: 0, state: 'ready', loadedLabels: ['a'] } });
    expect(d.router.worker('bad')?.state).toBe('draining');
    const good = await h.worker({ url: d.url, id: 'good', labels: [] });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(200);
    expect(res.body.worker_id).toBe('good');
    expect(swallower.received).toHaveLength(2);
    expect(good.received).toHaveLength(1);
  });

  it('releases a quarantined worker after the cool-down', async () => {
    const d = await h.dispatcher({ taskTimeoutMs: 100, quarantineStrikes: 1, quarantineMs: 200 });
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], slots: 2, answer: false });
    expect((await post(d.url, '/run-task', task('a'))).status).toBe(504);
    const metrics = await get(d.url, '/metrics');
    expect(metrics.body).toMatch(/^smart_routing_worker_quarantines_total\{reason="task_timeout"\} 1$/m);
    for (let state = ''; state !== 'ready';) {
      state = (await get(d.url, '/workers')).body[0].state;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    void post(d.url, '/run-task', task('a'));
    await w.waitForTasks(2);
  });
});

describe('deterministic failures', () => {
  it('regression: a failed load with no other worker to try fails at once, not after the back-off', async () => {
    const d = await h.dispatcher({ taskTimeoutMs: 4000, labelFailureBackoffMs: 30_000 });
    const w = await h.worker({ url: d.url, id: 'only', failLoad: (label) => label === 'broken' });
    const res = await post(d.url, '/run-task', task('broken'));
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('worker_error');
    expect(res.body.error.message).toMatch(/label_load_failed/);
    expect(w.received).toHaveLength(1);
  });
});
