import { afterEach, describe, expect, it } from 'vitest';
import { Harness, eventually, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('startDispatcher', () => {
  it('listens on the port it reports', async () => {
    const d = await h.dispatcher();
    expect(d.url).toBe(`http://127.0.0.1:${d.port}`);
    expect((await get(d.url, '/health')).status).toBe(200);
  });

  it('rejects invalid options with a message naming the option', async () => {
    await expect(h.dispatcher({ taskTimeoutMs: -1 })).rejects.toThrow(/invalid taskTimeoutMs/);
  });
});

describe('DispatcherHandle#drain', () => {
  it('stops admitting, lets queued and in-flight tasks finish, sends Drain, then closes sockets and server', async () => {
    const d = await h.dispatcher({ shutdownGraceMs: 5000 });
    // The first task is held until the second is queued: a fixed run time could end first on a loaded machine.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const w = await h.worker({ url: d.url, id: 'w1', before: () => gate });
    const running = post(d.url, '/run-task', task('a'));
    await w.waitForTasks(1);
    const queued = post(d.url, '/run-task', task('a'));
    await eventually(() => d.router.queuedCount > 0);

    const drained = d.drain();
    const refused = await post(d.url, '/run-task', task('a'));
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('shutting_down');
    expect(refused.headers.get('retry-after')).toBe('5');
    expect((await get(d.url, '/health')).body.status).toBe('draining');

    release();
    expect((await running).status).toBe(200);
    expect((await queued).status).toBe(200);
    await drained;
    // Drain reached the worker before its socket closed with 1001 (going away).
    const bodies = w.frames.map((f) => f.body);
    expect(bodies.indexOf('drain')).toBeGreaterThan(bodies.lastIndexOf('runTask'));
    expect((await w.waitForClose()).code).toBe(1001);
    await expect(fetch(`${d.url}/health`)).rejects.toThrow();
  });

  it('answers what is left with 503 shutting_down when the grace runs out', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w1', answer: false });
    const stuck = post(d.url, '/run-task', task('a'));
    while (d.router.workerCount === 0 || [...d.router.workers()][0]!.inFlight.size === 0)
      await new Promise((r) => setTimeout(r, 5));
    await d.drain(50);
    const res = await stuck;
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/shut down before the task finished/);
  });

  it('close() cuts a drain short, and both are safe to call twice', async () => {
    const d = await h.dispatcher({ shutdownGraceMs: 60_000 });
    await h.worker({ url: d.url, id: 'w1', answer: false });
    const stuck = post(d.url, '/run-task', task('a'));
    while ([...d.router.workers()][0]?.inFlight.size !== 1) await new Promise((r) => setTimeout(r, 5));
    const draining = d.drain();
    await Promise.all([d.close(), d.close(), draining, d.drain()]);
    expect((await stuck).status).toBe(503);
    await d.close();
  });
});
