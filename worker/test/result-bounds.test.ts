/**
 * Issue 11, item 1 (worker side): a model server's answer is size-bounded before it is decoded,
 * and a result over the dispatcher's frame limit fails its task instead of closing the link.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ResponseTooLargeError } from '../src/bounded-body.js';
import { ModelCache } from '../src/handlers/model-cache.js';
import { inferHandler } from '../src/handlers/infer.js';
import { TritonClient } from '../src/triton-client.js';
import { startWorker } from '../src/worker.js';
import { FakeDispatcher, memoryLogger } from './helpers/fake-dispatcher.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A model server whose infer answer is `bytes` long: declared (Content-Length) or streamed (chunked). */
async function hugeAnswerServer(
  bytes: number,
  declared: boolean,
): Promise<{ url: string; sent: () => number }> {
  let sent = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(declared ? { 'content-length': String(bytes) } : {}),
    });
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => res.destroy());
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sent: () => sent };
}

const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] };

describe('TritonClient response bound', () => {
  it('regression: refuses a declared answer over maxResponseBytes without reading it', async () => {
    const server = await hugeAnswerServer(8 * 1024 * 1024, true);
    const client = new TritonClient({ url: server.url, maxResponseBytes: 1024 * 1024 });
    const err = await client.infer('m', request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect((err as Error).message).toMatch(/8388608 bytes, over the worker's limit of 1048576/);
  });

  it('regression: stops reading a streamed answer once it passes the limit', async () => {
    const total = 64 * 1024 * 1024;
    const server = await hugeAnswerServer(total, false);
    const client = new TritonClient({ url: server.url, maxResponseBytes: 1024 * 1024 });
    const err = await client.infer('m', request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    // The client hung up: the server could not push all 64 MiB.
    expect(server.sent()).toBeLessThan(total);
  });

  it('fails the infer task inference_failed (not retried elsewhere), naming result_too_large', async () => {
    const server = await hugeAnswerServer(4 * 1024 * 1024, true);
    const client = new TritonClient({ url: server.url, maxResponseBytes: 1024 * 1024 });
    const err = await inferHandler
      .run(inferHandler.parse(request), {
        taskId: 't',
        label: 'm',
        client,
        models: new ModelCache({ client, modelRepository: '/nonexistent' }),
        signal: new AbortController().signal,
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TaskError', code: 'inference_failed' });
    expect((err as Error).message).toMatch(/result_too_large/);
  });
});

describe('result over the dispatcher frame limit', () => {
  it('regression: fails that task with result_too_large and keeps the link for the next task', async () => {
    const dispatcher = await FakeDispatcher.start({ maxFrameBytes: 128 * 1024 });
    cleanups.push(() => dispatcher.close());
    const { logger, records } = memoryLogger();
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-bounds',
      maxLabels: 1,
      slots: 1,
      tritonUrl: 'none',
      logger,
    });
    cleanups.push(() => worker.close());
    await dispatcher.waitFor((m) => m.body === 'hello');
    const send = (taskId: string, text: string): void =>
      dispatcher.send({
        runTask: {
          taskId,
          taskType: 'echo',
          label: '',
          parametersJson: JSON.stringify({ text }),
          evictLabel: '',
          attempt: 1,
        },
      });
    send('big', 'x'.repeat(200 * 1024));
    const big = await dispatcher.result('big');
    expect(big.error).toMatchObject({ code: 'inference_failed' });
    expect(big.error?.message).toMatch(/result_too_large: the result has \d+ bytes/);
    // Regression: logged once, as what the dispatcher got (it said ok: true, then result_too_large).
    const lines = records.filter((r) => r.task_id === 'big');
    expect(lines).toEqual([
      expect.objectContaining({
        event: 'task_completed',
        ok: false,
        error_code: 'inference_failed',
        message: expect.stringMatching(/^result_too_large: /),
      }),
    ]);
    send('small', 'hi');
    const small = await dispatcher.result('small');
    expect(JSON.parse(small.resultJson!)).toEqual({ echo: { text: 'hi' } });
  });
});
