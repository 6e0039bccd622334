/**
 * Issue 11, item 6: a frozen or dead model server is noticed by the worker, reported to the
 * dispatcher (heartbeat `draining`), label tasks are refused `model_server_unavailable` (the
 * dispatcher re-routes them), and the worker recovers once the server answers again.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelServerWatch } from '../src/model-server-watch.js';
import { startWorker } from '../src/worker.js';
import { FakeDispatcher, memoryLogger } from './helpers/fake-dispatcher.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('ModelServerWatch#check', () => {
  it('turns unhealthy after `failures` failed probes in a row, healthy again after one success', async () => {
    let answer: boolean | 'hang' | 'throw' = true;
    const watch = new ModelServerWatch({
      probe: () =>
        answer === 'hang'
          ? new Promise<boolean>(() => {})
          : answer === 'throw'
            ? Promise.reject(new Error('ECONNREFUSED'))
            : Promise.resolve(answer),
      logger: pino({ level: 'silent' }),
      timeoutMs: 20,
      failures: 2,
    });
    const changes: boolean[] = [];
    watch.on('change', (h) => changes.push(h));
    answer = 'throw';
    await watch.check();
    expect(watch.healthy).toBe(true);
    answer = 'hang'; // a frozen server: the probe times out
    await watch.check();
    expect(watch.healthy).toBe(false);
    answer = false;
    await watch.check();
    answer = true;
    await watch.check();
    expect(watch.healthy).toBe(true);
    expect(changes).toEqual([false, true]);
  });
});

describe('worker with a model server that freezes', () => {
  it('regression: reports draining and refuses label tasks while it hangs, then recovers', async () => {
    let frozen = false;
    const held: ServerResponse[] = [];
    const triton = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      if (frozen) return void held.push(res); // never answers, like a SIGSTOPped process
      if (req.url === '/v2/health/ready') return void res.writeHead(200).end();
      if (req.url === '/v2/repository/index')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no"}');
    });
    await new Promise<void>((resolve) => triton.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          triton.closeAllConnections();
          triton.close(() => resolve());
        }),
    );
    const dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 50 });
    cleanups.push(() => dispatcher.close());
    const { logger } = memoryLogger();
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-watch',
      tritonUrl: `http://127.0.0.1:${(triton.address() as AddressInfo).port}`,
      healthProbeIntervalMs: 30,
      logger,
    });
    cleanups.push(() => worker.close());
    await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'ready');

    frozen = true;
    const from = dispatcher.received.length;
    await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'draining', from);
    dispatcher.send({
      runTask: {
        taskId: 'while-frozen',
        taskType: 'infer',
        label: 'm',
        parametersJson: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }),
        evictLabel: '',
        attempt: 1,
      },
    });
    const refused = await dispatcher.result('while-frozen');
    expect(refused.error?.code).toBe('model_server_unavailable');
    // Label-free tasks do not need the model server.
    dispatcher.send({
      runTask: {
        taskId: 'echo',
        taskType: 'echo',
        label: '',
        parametersJson: '{}',
        evictLabel: '',
        attempt: 1,
      },
    });
    expect((await dispatcher.result('echo')).error).toBeUndefined();

    frozen = false;
    for (const res of held.splice(0)) res.destroy();
    const back = dispatcher.received.length;
    await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'ready', back);
  });
});

describe('inference deadline', () => {
  it("regression: the model-server call gives up at the task's deadline, not after inferTimeoutMs", async () => {
    const triton = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      if (req.url?.endsWith('/infer')) return; // hangs
      if (req.url === '/v2/repository/index')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => triton.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          triton.closeAllConnections();
          triton.close(() => resolve());
        }),
    );
    const dispatcher = await FakeDispatcher.start();
    cleanups.push(() => dispatcher.close());
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-deadline',
      tritonUrl: `http://127.0.0.1:${(triton.address() as AddressInfo).port}`,
      logger: memoryLogger().logger,
    });
    cleanups.push(() => worker.close());
    await dispatcher.waitFor((m) => m.body === 'hello');
    dispatcher.send({
      runTask: {
        taskId: 'late',
        taskType: 'infer',
        label: 'm',
        parametersJson: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }),
        evictLabel: '',
        attempt: 1,
        deadlineUnixMs: Date.now() + 300,
      },
    });
    // Without the deadline the worker waits 120 s for the hanging model server (waitFor gives up at 20 s).
    const result = await dispatcher.result('late');
    expect(result.error?.code).toBe('inference_failed');
    expect(result.error?.message).toMatch(/timed out after \d+ ms/);
  });
});

describe('callTimeoutMs', () => {
  it('is the limit without a deadline, the time left with one, at least 1 ms', async () => {
    const { callTimeoutMs } = await import('../src/triton-client.js');
    expect(callTimeoutMs(5000, undefined)).toBe(5000);
    expect(callTimeoutMs(5000, 0)).toBe(5000);
    expect(callTimeoutMs(5000, Date.now() + 10 * 60_000)).toBe(5000);
    const left = callTimeoutMs(5000, Date.now() + 1000);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(1000);
    expect(callTimeoutMs(5000, Date.now() - 1000)).toBe(1);
  });
});
