import { PROTOCOL_VERSION } from '@smart-routing/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeWorker } from './fake-worker.js';
import { Harness, eventually, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('worker upgrade checks', () => {
  it('answers 401 to a missing or wrong worker token, before upgrading', async () => {
    const d = await h.dispatcher({ workerToken: 's3cret' });
    const none = await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'w1' });
    expect(none.status).toBe(401);
    expect(none.body?.error.code).toBe('unauthorized');
    const wrong = await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'w1', authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    const w = await h.worker({ url: d.url, id: 'w1', token: 's3cret' });
    expect(w.frames[0]!.body).toBe('welcome');
  });

  it('answers 409 to a second connection with a live Worker-Id', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'twin' });
    const res = await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'twin' });
    expect(res.status).toBe(409);
    expect(res.body?.error.code).toBe('duplicate_worker_id');
  });

  it('answers 400 without a Worker-Id and 404 on another path', async () => {
    const d = await h.dispatcher();
    expect((await FakeWorker.tryUpgrade(d.url, {})).status).toBe(400);
    const res = await new Promise<number>((resolve) => {
      void import('ws').then(({ default: WebSocket }) => {
        const ws = new WebSocket(`${d.url.replace('http', 'ws')}/elsewhere`, {
          headers: { 'worker-id': 'x' },
        });
        ws.on('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0));
        ws.on('error', () => {});
      });
    });
    expect(res).toBe(404);
  });
});

describe('worker protocol', () => {
  it('welcomes a Hello with the protocol version, heartbeat interval and what it accepted', async () => {
    const d = await h.dispatcher({ heartbeatIntervalMs: 250, maxPayloadBytes: 1 << 20 });
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], slots: 3, labelCapacity: 4 });
    expect(w.frames[0]).toEqual({
      body: 'welcome',
      welcome: {
        protocolVersion: PROTOCOL_VERSION,
        heartbeatIntervalMs: 250,
        labelCapacity: 4,
        taskSlots: 3,
        maxFrameBytes: 1 << 20,
        // A standalone dispatcher: no replica id, token 0 (issue 13).
        fencingToken: 0,
        replicaId: '',
        role: 'standalone',
      },
    });
    expect(d.router.worker('w1')).toMatchObject({
      taskSlots: 3,
      labelCapacity: 4,
      labels: ['a'],
      state: 'ready',
    });
  });

  it('tells a worker that claims too much what it was clamped to', async () => {
    const d = await h.dispatcher({ maxWorkerLabels: 2, maxWorkerSlots: 5 });
    const w = await h.worker({ url: d.url, id: 'w-big', slots: 50, labelCapacity: 9 });
    expect(w.frames[0]).toMatchObject({ body: 'welcome', welcome: { labelCapacity: 2, taskSlots: 5 } });
  });

  it('closes 1002 on a malformed frame and keeps serving others', async () => {
    const d = await h.dispatcher();
    const bad = await h.worker({ url: d.url, id: 'bad' });
    await h.worker({ url: d.url, id: 'good' });
    bad.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]));
    const closed = await bad.waitForClose();
    expect(closed.code).toBe(1002);
    await eventually(() => d.router.worker('bad') === undefined);
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(200);
    expect(res.body.worker_id).toBe('good');
  });

  it('closes 1002 on a frame before Hello that is not a Hello', async () => {
    const d = await h.dispatcher();
    const w = await FakeWorker.connect({ url: d.url, id: 'rude', hello: false });
    w.send({ heartbeat: { inFlight: 0 } });
    expect((await w.waitForClose()).code).toBe(1002);
  });

  it('closes 1002 on another protocol version', async () => {
    const d = await h.dispatcher();
    const w = await FakeWorker.connect({ url: d.url, id: 'future', hello: false });
    w.send({
      hello: { protocolVersion: PROTOCOL_VERSION + 1, workerId: 'future', labelCapacity: 1, taskSlots: 1 },
    });
    const closed = await w.waitForClose();
    expect(closed.code).toBe(1002);
    expect(closed.reason).toMatch(/protocol version/);
  });

  it('closes 1008 when no Hello arrives in time', async () => {
    const d = await h.dispatcher({ helloTimeoutMs: 100 });
    const w = await FakeWorker.connect({ url: d.url, id: 'mute', hello: false });
    expect((await w.waitForClose()).code).toBe(1008);
  });

  it('closes 1009 on a frame over maxPayloadBytes', async () => {
    const d = await h.dispatcher({ maxPayloadBytes: 1024 });
    const w = await h.worker({ url: d.url, id: 'big' });
    w.send({ heartbeat: { loadedLabels: ['x'.repeat(2048)] } });
    expect((await w.waitForClose()).code).toBe(1009);
    await eventually(() => d.router.worker('big') === undefined);
  });

  it('closes 1003 on a text frame', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'texter' });
    w.sendRaw('hello?', false);
    expect((await w.waitForClose()).code).toBe(1003);
  });

  it('pings a quiet worker and drops one that stays silent', async () => {
    const d = await h.dispatcher({ heartbeatIntervalMs: 20, workerTimeoutMs: 200 });
    const w = await FakeWorker.connect({ url: d.url, id: 'quiet', hello: false });
    w.send({
      hello: { protocolVersion: PROTOCOL_VERSION, workerId: 'quiet', labelCapacity: 1, taskSlots: 1 },
    });
    // It answers pings (the fake does) but sends no heartbeats of its own: pings keep it alive.
    await w.waitFor((f) => f.body === 'ping');
    expect(d.router.worker('quiet')).toBeDefined();
    // A worker that answers nothing at all is dropped.
    const mute = await FakeWorker.connect({ url: d.url, id: 'mute', hello: false });
    mute.send({
      hello: { protocolVersion: PROTOCOL_VERSION, workerId: 'mute', labelCapacity: 1, taskSlots: 1 },
    });
    mute.ws.removeAllListeners('message');
    await eventually(() => mute.closed !== undefined);
    expect(d.router.worker('mute')).toBeUndefined();
    expect(d.router.worker('quiet')).toBeDefined();
    await w.close();
  });

  it('regression (failover chaos, worker_lost): does not drop its workers for the silence of its own pause', async () => {
    // A leader woken from SIGSTOP ran its liveness check before reading the heartbeats queued in
    // its sockets, dropped every worker and failed their tasks with worker_lost.
    const d = await h.dispatcher({ heartbeatIntervalMs: 20, workerTimeoutMs: 200 });
    const w = await FakeWorker.connect({ url: d.url, id: 'paused', hello: false });
    w.send({
      hello: { protocolVersion: PROTOCOL_VERSION, workerId: 'paused', labelCapacity: 1, taskSlots: 1 },
    });
    await eventually(() => d.router.worker('paused') !== undefined);
    // This process stops for three worker timeouts (as a SIGSTOP would; the fake worker too).
    const until = Date.now() + 600;
    while (Date.now() < until) {
      // busy: no timer, no socket read
    }
    let frames = 0;
    w.ws.on('message', () => frames++);
    await eventually(() => frames > 0 || w.closed !== undefined);
    expect(w.closed).toBeUndefined();
    expect(d.router.worker('paused')).toBeDefined();
    await w.close();
  });

  it('takes loaded labels from heartbeats as the truth', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    w.send({ heartbeat: { inFlight: 0, state: 'ready', loadedLabels: ['b', 'c'] } });
    await eventually(() => d.router.worker('w1')!.labels.join() === 'b,c');
    w.send({ heartbeat: { inFlight: 0, state: 'draining', loadedLabels: ['b', 'c'] } });
    await eventually(() => d.router.worker('w1')!.state === 'draining');
    expect((await get(d.url, '/workers')).body[0].state).toBe('draining');
  });
});
