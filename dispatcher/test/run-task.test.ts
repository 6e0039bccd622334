import { afterEach, describe, expect, it } from 'vitest';
import { Harness, eventually, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('POST /run-task routing over real sockets', () => {
  it('sends a task to the worker holding its label (affinity)', async () => {
    const d = await h.dispatcher();
    const w1 = await h.worker({ url: d.url, id: 'w1', labels: ['b'] });
    const w2 = await h.worker({ url: d.url, id: 'w2', labels: ['a'] });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'completed',
      worker_id: 'w2',
      label: 'a',
      label_miss: false,
      attempts: 1,
      result: { echo: { texts: ['hi'] }, worker: 'w2' },
    });
    expect(w2.received).toHaveLength(1);
    expect(w1.received).toHaveLength(0);
  });

  it('tells the worker which label to evict, and the worker follows it', async () => {
    const d = await h.dispatcher();
    // Most recent first: y is the least recently used label.
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['x', 'y'] });
    const res = await post(d.url, '/run-task', task('z'));
    expect(res.status).toBe(200);
    expect(res.body.label_miss).toBe(true);
    expect(w.received[0]!.evictLabel).toBe('y');
    expect(w.cache.labels).toEqual(['z', 'x']);
    await eventually(
      () => d.router.worker('w1')!.labels.join() === 'z,x' && d.router.worker('w1')!.loading.size === 0,
    );
  });

  it('random ignores labels (seeded, statistically)', async () => {
    const d = await h.dispatcher({ policy: 'random' });
    const w1 = await h.worker({ url: d.url, id: 'w1', labels: ['a'], runMs: 1 });
    const w2 = await h.worker({ url: d.url, id: 'w2', labels: ['b'], runMs: 1 });
    for (let i = 0; i < 40; i++) expect((await post(d.url, '/run-task', task('a'))).status).toBe(200);
    // Affinity would send all 40 to w1; a fair coin gives each at least 10 with overwhelming odds.
    expect(w1.received.length).toBeGreaterThanOrEqual(10);
    expect(w2.received.length).toBeGreaterThanOrEqual(10);
  });

  it('retries a task on another worker when its worker dies mid-task', async () => {
    const d = await h.dispatcher();
    const doomed = await h.worker({ url: d.url, id: 'doomed', labels: ['a'], answer: false });
    await h.worker({ url: d.url, id: 'survivor', labels: [] });
    const pending = post(d.url, '/run-task', task('a'));
    await doomed.waitForTasks(1);
    doomed.terminate();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ worker_id: 'survivor', attempts: 2, label_miss: true });
    await eventually(() => d.router.worker('doomed') === undefined);
    expect((await get(d.url, '/metrics')).body).toMatch(/^smart_routing_task_retries_total 1$/m);
  });

  it('fails with worker_lost and the reason once the attempts are used up', async () => {
    const d = await h.dispatcher({ maxAttempts: 2 });
    const first = await h.worker({ url: d.url, id: 'first', labels: ['a'], answer: false });
    const pending = post(d.url, '/run-task', task('a'));
    await first.waitForTasks(1);
    first.terminate();
    // No worker left: the retry waits at the front of the queue for the next one.
    await eventually(() => d.router.workerCount === 0);
    const second = await h.worker({ url: d.url, id: 'second', answer: false });
    const [retry] = await second.waitForTasks(1);
    expect(retry!.attempt).toBe(2);
    second.terminate();
    const res = await pending;
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('worker_lost');
    expect(res.body.error.message).toMatch(/worker second was lost.*after 2 attempts/);
  });

  it('re-routes a label that failed to load to another worker', async () => {
    const d = await h.dispatcher();
    // broken has a free label slot, so it is preferred for the load, and fails it.
    const broken = await h.worker({ url: d.url, id: 'broken', failLoad: () => true });
    const healthy = await h.worker({ url: d.url, id: 'healthy', labels: ['x', 'y'] });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ worker_id: 'healthy', attempts: 2 });
    expect(broken.received).toHaveLength(1);
    expect(healthy.received[0]!.evictLabel).toBe('y');
    expect(d.router.worker('broken')!.failing.has('a')).toBe(true);
  });

  it('fails with worker_error once failed loads use up the attempts', async () => {
    const d = await h.dispatcher({ maxAttempts: 1 });
    await h.worker({ url: d.url, id: 'broken', failLoad: () => true });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('worker_error');
    expect(res.body.error.message).toMatch(/label_load_failed/);
  });

  it('answers 404 label_not_found when the worker lacks the model', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w1', missingLabels: ['ghost'] });
    const res = await post(d.url, '/run-task', task('ghost'));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('label_not_found');
  });

  it('answers 409 for a task_id already in flight', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', runMs: 300 });
    const body = task('a');
    const first = post(d.url, '/run-task', body);
    await w.waitForTasks(1);
    const dup = await post(d.url, '/run-task', body);
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('duplicate_task_id');
    expect((await first).status).toBe(200);
  });

  it('answers 504 task_timeout when the task does not finish in time', async () => {
    // Long enough for the task to reach the worker on a loaded machine (the message names it).
    const d = await h.dispatcher({ taskTimeoutMs: 1000 });
    await h.worker({ url: d.url, id: 'w1', answer: false });
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('task_timeout');
    expect(res.body.error.message).toMatch(/running on worker w1/);
  });

  it('answers 503 queue_full with Retry-After when the queue is full', async () => {
    const d = await h.dispatcher({ maxQueue: 1 });
    const w = await h.worker({ url: d.url, id: 'w1', answer: false });
    const running = post(d.url, '/run-task', task('a'));
    await w.waitForTasks(1);
    const queued = post(d.url, '/run-task', task('a'));
    await eventually(() => d.router.queuedCount === 1);
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('queue_full');
    // Nothing measured yet: 1 queued x the 50 ms default run time over 1 slot rounds up to 1 s.
    expect(res.headers.get('retry-after')).toBe('1');
    await d.close();
    expect((await running).status).toBe(503);
    expect((await queued).body.error.code).toBe('shutting_down');
  });

  it('answers 400 unknown_task_type once workers are known, and lets tasks wait before any joined', async () => {
    const d = await h.dispatcher();
    const early = post(d.url, '/run-task', task('a', { task_type: 'echo' }));
    await eventually(() => d.router.queuedCount === 1);
    await h.worker({ url: d.url, id: 'w1', taskTypes: ['echo'] });
    expect((await early).status).toBe(200);
    const res = await post(d.url, '/run-task', task('a', { task_type: 'teleport' }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_task_type');
  });

  it('answers 503 no_capable_worker with Retry-After when the workers serving a type are gone', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', taskTypes: ['echo'] });
    await w.close();
    await eventually(() => d.router.workerCount === 0);
    const res = await post(d.url, '/run-task', task('a', { task_type: 'echo' }));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('no_capable_worker');
    expect(res.headers.get('retry-after')).toBe('5');
  });

  it('drops a queued task whose producer went away', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', answer: false });
    const running = post(d.url, '/run-task', task('a'));
    await w.waitForTasks(1);
    const controller = new AbortController();
    const gone = fetch(`${d.url}/run-task`, {
      method: 'POST',
      body: JSON.stringify(task('a')),
      signal: controller.signal,
    }).catch(() => 'aborted');
    await eventually(() => d.router.queuedCount === 1);
    controller.abort();
    expect(await gone).toBe('aborted');
    await eventually(() => d.router.queuedCount === 0);
    await d.close();
    expect((await running).status).toBe(503);
  });
});
