/**
 * Issue 11, item 2: a peer that flaps under a new worker id each time escaped the quarantine by id.
 * The endpoint now counts short sessions per peer (its credential, or the shared token plus its
 * address), over real WebSockets.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerQuarantine } from '../src/quarantine.js';
import { FakeWorker } from './fake-worker.js';
import { Harness, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

/** Status, Retry-After and JSON body of an upgrade attempt (from `localAddress`, if given). */
function upgrade(
  url: string,
  headers: Record<string, string>,
  localAddress?: string,
): Promise<{ status: number; retryAfter: string | undefined; body: unknown }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/worker-listen`, {
    headers,
    ...(localAddress ? { localAddress } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, retryAfter: undefined, body: undefined });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        ws.terminate();
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body: JSON.parse(text),
        });
      });
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('peer quarantine', () => {
  it('regression: a peer flapping under new ids every ~100 ms from one credential is refused 429; another credential keeps working', async () => {
    const d = await h.dispatcher({
      workerToken: 'shared',
      workerTokens: { good: 'good-secret' },
      quarantineMs: 30_000,
    });
    const good = await h.worker({ url: d.url, id: 'good', token: 'good-secret', labels: ['a'] });

    // The flapper: joins (Hello welcomed) under a fresh id, stays ~100 ms, leaves, again.
    let refused: Awaited<ReturnType<typeof upgrade>> | undefined;
    for (let i = 0; i < 50 && !refused; i++) {
      let flapper: FakeWorker;
      try {
        flapper = await FakeWorker.connect({ url: d.url, id: `flap-${i}`, token: 'shared' });
      } catch (err) {
        expect((err as Error).message).toMatch(/upgrade refused: 429/);
        refused = await upgrade(d.url, { 'worker-id': `flap-${i}`, authorization: 'Bearer shared' });
        break;
      }
      await sleep(100);
      await flapper.close();
    }
    expect(refused).toBeDefined();
    expect(refused!.status).toBe(429);
    expect(refused!.body).toEqual({
      error: { code: 'worker_quarantined', message: expect.stringMatching(/flapped; retry in \d+ s/) },
    });
    expect(Number(refused!.retryAfter)).toBeGreaterThan(0);
    expect(Number(refused!.retryAfter)).toBeLessThanOrEqual(30);

    // The well-behaved worker with its own credential still gets tasks, and may reconnect.
    const res = await post(d.url, '/run-task', task('a'));
    expect(res.status).toBe(200);
    expect(res.body.worker_id).toBe('good');
    await good.close();
    const back = await h.worker({ url: d.url, id: 'good', token: 'good-secret', labels: ['a'] });
    expect(back.frames[0]!.body).toBe('welcome');

    // The shared token from another address is another peer: not refused.
    const elsewhere = await upgrade(
      d.url,
      { 'worker-id': 'other-host', authorization: 'Bearer shared' },
      '127.0.0.2',
    );
    expect(elsewhere.status).toBe(101);
  });

  it('shows the quarantined peer in /metrics while it is refused, and 0 after its back-off', async () => {
    const d = await h.dispatcher({ workerToken: 'shared', quarantineMs: 3000 });
    const peers = async (): Promise<number> =>
      Number(/^smart_routing_quarantined_peers (\d+)$/m.exec((await get(d.url, '/metrics')).body)![1]);
    const tryUpgrade = (i: number) =>
      upgrade(d.url, { 'worker-id': `flap-${i}`, authorization: 'Bearer shared' });
    expect(await peers()).toBe(0);

    let i = 0;
    for (; i < 50; i++) {
      let flapper: FakeWorker;
      try {
        flapper = await FakeWorker.connect({ url: d.url, id: `flap-${i}`, token: 'shared' });
      } catch {
        break;
      }
      await sleep(50);
      await flapper.close();
    }
    // Read between two refusals, the gauge cannot have missed the quarantine (no flaps in between).
    const during = await peers();
    const refused = await tryUpgrade(i);
    expect(refused.status).toBe(429);
    expect(during).toBe(1);
    const text = (await get(d.url, '/metrics')).body as string;
    expect(text).toMatch(/^smart_routing_worker_upgrades_refused_total\{code="worker_quarantined"\} 2$/m);

    // After the cool-down the scrape itself releases the peer; an upgrade then succeeds.
    await sleep(Number(refused.retryAfter) * 1000);
    await expect.poll(peers, { timeout: 10_000 }).toBe(0);
    expect((await tryUpgrade(i + 1)).status).toBe(101);
  });

  it('counts only sessions shorter than minWorkerSessionMs', async () => {
    const d = await h.dispatcher({ minWorkerSessionMs: 0, peerFlapStrikes: 2 });
    for (let i = 0; i < 6; i++) {
      const w = await FakeWorker.connect({ url: d.url, id: `w-${i}` });
      await w.close();
    }
    expect((await upgrade(d.url, { 'worker-id': 'w-last' })).status).toBe(101);
  });
});

describe('WorkerQuarantine#remainingMs', () => {
  it('tells the time left and releases a period that ended', () => {
    const q = new WorkerQuarantine({ strikes: 2, windowMs: 1000, cooldownMs: 500 });
    expect(q.strike('p', 'flapping', 0)).toBeUndefined();
    expect(q.remainingMs('p', 0)).toBeUndefined();
    expect(q.strike('p', 'flapping', 10)).toMatchObject({
      workerId: 'p',
      cooldownMs: 500,
      reason: 'flapping',
    });
    expect(q.remainingMs('p', 110)).toBe(400);
    expect(q.isQuarantined('p')).toBe(true);
    expect(q.remainingMs('p', 510)).toBeUndefined();
    expect(q.isQuarantined('p')).toBe(false);
  });
});
