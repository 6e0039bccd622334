import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../src/config.js';
import { startDispatcher } from '../src/dispatcher.js';
import { FakeWorker } from './fake-worker.js';
import { Harness, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('worker trust', () => {
  it('refuses to start beyond loopback without a worker token, naming WORKER_TOKEN', async () => {
    const start = startDispatcher({ port: 0, host: '0.0.0.0' });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(startDispatcher({ port: 0, host: '0.0.0.0' })).rejects.toThrow(/WORKER_TOKEN/);
    const open = await startDispatcher({ port: 0, host: '0.0.0.0', allowOpenWorkers: true });
    await open.close();
  });

  it('reads WORKER_TOKENS, ALLOW_OPEN_WORKERS and the HTTP limits from the environment', () => {
    const c = loadConfig({
      WORKER_TOKENS: 'w1:t1, w2:t2',
      ALLOW_OPEN_WORKERS: 'true',
      HEADERS_TIMEOUT_MS: '2000',
      REQUEST_TIMEOUT_MS: '4000',
      MAX_CONNECTIONS: '7',
    });
    expect(c.workerTokens).toEqual({ w1: 't1', w2: 't2' });
    expect(c).toMatchObject({
      allowOpenWorkers: true,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 4000,
      maxConnections: 7,
    });
    expect(() => loadConfig({ WORKER_TOKENS: 'nocolon' })).toThrow(/WORKER_TOKENS/);
    const d = loadConfig({});
    expect(d).toMatchObject({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 10_000 });
  });

  it('binds a per-worker token to its id: one token cannot speak for another id', async () => {
    const d = await h.dispatcher({ workerTokens: { w1: 't1', w2: 't2' } });
    const stolen = await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'w2', authorization: 'Bearer t1' });
    expect(stolen.status).toBe(401);
    expect(stolen.body?.error.code).toBe('unauthorized');
    const unlisted = await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'w3', authorization: 'Bearer t1' });
    expect(unlisted.status).toBe(401);
    const w = await h.worker({ url: d.url, id: 'w2', token: 't2' });
    expect(w.frames[0]!.body).toBe('welcome');
  });

  it('refuses a frame over the pre-Hello limit from its header, without reading it', async () => {
    // A Hello timeout far off: on a loaded machine, sending 50 MB can take longer than the default 5 s.
    const d = await h.dispatcher({ preHelloMaxBytes: 64 * 1024, helloTimeoutMs: 120_000 });
    const ws = new WebSocket(`${d.url.replace('http', 'ws')}/worker-listen`, {
      headers: { 'worker-id': 'big' },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const before = process.memoryUsage().rss;
    // A 50 MB binary frame: ws refuses it at its header (1009) and the rest is never buffered.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => {});
    ws.send(Buffer.alloc(50 * 1024 * 1024, 1), { binary: true });
    expect(await closed).toBe(1009);
    // The sender's own 50 MB buffer is in this process too; the dispatcher did not add a second copy.
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });
});

describe('HTTP limits', () => {
  it('answers a body over the limit with 413 payload_too_large, declared or streamed', async () => {
    const d = await h.dispatcher({ maxBodyBytes: 2048 });
    const big = await post(d.url, '/run-task', {
      ...task('a'),
      parameters_json: JSON.stringify('x'.repeat(4096)),
    });
    expect(big.status).toBe(413);
    expect((big.body as { error: { code: string } }).error.code).toBe('payload_too_large');
    const other = await post(d.url, '/upload-model', { x: 'y'.repeat(4096) });
    expect(other.status).toBe(413);
    expect((other.body as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('answers connections beyond MAX_CONNECTIONS with 503 (issue 11: was a silent drop)', async () => {
    const d = await h.dispatcher({ maxConnections: 1 });
    const first = connect(d.port, '127.0.0.1');
    await new Promise<void>((resolve) => first.once('connect', () => resolve()));
    const second = await new Promise<string>((resolve) => {
      const r = request({ port: d.port, host: '127.0.0.1', path: '/workers' }, (res) =>
        resolve(`answered ${res.statusCode}`),
      );
      r.on('error', () => resolve('dropped'));
      r.end();
    });
    first.destroy();
    expect(second).toBe('answered 503');
  });
});
