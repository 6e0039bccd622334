/**
 * Limits (issue 5, part 2) not already covered by dispatcher/test: what a worker may claim
 * (label capacity, task slots, reported labels), the body limit without a Content-Length or
 * behind compression, oversized or malformed HTTP heads, the per-label queue limit, and a
 * Retry-After that follows the queue's expected drain time (and stays a sane integer).
 * Covered elsewhere: body over the limit by Content-Length, frames over maxPayload (1009), the
 * total queue limit (dispatcher/test).
 */
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  resolveOptions,
  startDispatcher,
  type DispatcherHandle,
  type DispatcherOptions,
} from '@smart-routing/dispatcher';
import { EchoWorker, type EchoWorkerOptions } from './echo-worker.js';
import { captureLogger } from './fuzz-kit.js';

const dispatchers: DispatcherHandle[] = [];
const workers: EchoWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

async function dispatcher(options: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const d = await startDispatcher({
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    ...options,
  });
  dispatchers.push(d);
  return d;
}

async function worker(options: EchoWorkerOptions): Promise<EchoWorker> {
  const w = await EchoWorker.connect(options);
  workers.push(w);
  return w;
}

let seq = 0;
/** POSTs an echo task; resolves with status, body and Retry-After. */
async function runTask(
  d: DispatcherHandle,
  label: string,
): Promise<{ status: number; body: { error: { code: string } }; retryAfter: string | null }> {
  const res = await fetch(`${d.url}/run-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: `limits-${++seq}`, task_type: 'echo', label, parameters_json: '{}' }),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: res.status,
    body: (await res.json()) as { error: { code: string } },
    retryAfter: res.headers.get('retry-after'),
  };
}

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A raw request on a fresh TCP connection; resolves with what came back before the server closed. */
function rawHttp(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${JSON.stringify(text.slice(0, 200))}`));
    }, 5000);
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(request);
  });
}

describe('what a worker may claim', () => {
  it('defaults to 64 labels and 256 slots, and validates the options', () => {
    expect(resolveOptions({})).toMatchObject({ maxWorkerLabels: 64, maxWorkerSlots: 256 });
    expect(() => resolveOptions({ maxWorkerLabels: 0 })).toThrow(ConfigError);
    expect(() => resolveOptions({ maxWorkerSlots: 1.5 })).toThrow(/maxWorkerSlots/);
  });

  it('clamps label capacity and slots to the maximum, logs it, and cuts longer label reports', async () => {
    const logs = captureLogger('warn');
    const d = await dispatcher({
      maxWorkerLabels: 4,
      maxWorkerSlots: 8,
      heartbeatIntervalMs: 20,
      logger: logs.logger,
    });
    const labels = Array.from({ length: 10 }, (_, i) => `l${i}`);
    await worker({
      url: d.url,
      id: 'greedy',
      labelCapacity: 1_000_000,
      slots: 1_000_000,
      labels,
      taskTypes: ['echo'],
    });
    expect(d.router.worker('greedy')).toMatchObject({
      labelCapacity: 4,
      taskSlots: 8,
      labels: labels.slice(0, 4),
    });
    const listed = (await (await fetch(`${d.url}/workers`)).json()) as Record<string, unknown>[];
    expect(listed[0]).toMatchObject({ label_capacity: 4, slots: 8 });
    expect(logs.records.find((r) => r.event === 'worker_claims_clamped')).toMatchObject({
      worker_id: 'greedy',
      label_capacity: 1_000_000,
      task_slots: 1_000_000,
      max_worker_labels: 4,
      max_worker_slots: 8,
    });
    // Its heartbeats keep reporting 10 labels; the dispatcher keeps the 4 most recent.
    const before = logs.records.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(d.router.worker('greedy')!.labels).toEqual(labels.slice(0, 4));
    expect(logs.records.length).toBe(before);
  });

  it('keeps at most 64 task types of sensible length from one Hello', async () => {
    // This Hello is ~100 KiB, over the 64 KiB pre-Hello frame limit by default.
    const d = await dispatcher({ preHelloMaxBytes: 1024 * 1024 });
    const taskTypes = ['echo', 'x'.repeat(101), ...Array.from({ length: 10_000 }, (_, i) => `type-${i}`)];
    await worker({ url: d.url, id: 'many-types', labelCapacity: 1, slots: 1, labels: [], taskTypes });
    const listed = (await (await fetch(`${d.url}/workers`)).json()) as { task_types: string[] }[];
    expect(listed[0]!.task_types).toHaveLength(64);
    expect(listed[0]!.task_types).toContain('echo');
    expect(listed[0]!.task_types).not.toContain('x'.repeat(101));
  });

  it('never has more tasks in flight on a worker than the slot maximum', async () => {
    const d = await dispatcher({ maxWorkerSlots: 3 });
    const w = await worker({ url: d.url, id: 'greedy', slots: 1_000_000, hold: true, taskTypes: ['echo'] });
    const pending = Array.from({ length: 5 }, () => runTask(d, 'a'));
    await until(() => w.received === 3 && d.router.queuedCount === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(w.received).toBe(3);
    w.hold = false;
    w.release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(w.received).toBe(5);
  });
});

describe('request size', () => {
  it('holds the body limit without a Content-Length (chunked) and after decompression, as JSON 400', async () => {
    const d = await dispatcher({ maxBodyBytes: 2048 });
    const big = JSON.stringify({
      task_id: 't',
      task_type: 'echo',
      label: 'a',
      parameters_json: JSON.stringify('x'.repeat(4096)),
    });
    const chunked = await fetch(`${d.url}/run-task`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toEqual({
      error: { code: 'payload_too_large', message: 'the body is larger than 2048 bytes' },
    });
    // 12 bytes on the wire per KiB of spaces: the limit is on the inflated body.
    const bomb = gzipSync(Buffer.concat([Buffer.alloc(1024 * 1024, 0x20), Buffer.from('{}')]));
    expect(bomb.length).toBeLessThan(2048);
    const inflated = await fetch(`${d.url}/run-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: bomb,
    });
    expect(inflated.status).toBe(413);
    expect(((await inflated.json()) as { error: { message: string } }).error.message).toMatch(
      /larger than 2048/,
    );
  });

  it('answers oversized and malformed HTTP heads with a JSON 400, not an empty one', async () => {
    const d = await dispatcher();
    for (const request of [
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      'NOT-HTTP\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    ]) {
      const text = await rawHttp(d.port, request);
      expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(text).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as {
        error: { code: string; message: string };
      };
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.message).toMatch(/too large|malformed HTTP request/);
    }
    expect((await fetch(`${d.url}/health`)).status).toBe(200);
  });
});

describe('queue limits and Retry-After', () => {
  it('refuses past the per-label limit, with a Retry-After that follows the expected drain time', async () => {
    const d = await dispatcher({ maxQueue: 3, maxQueuePerLabel: 1 });
    // The worker reports 4 s per task: the dispatcher learns its drain estimate from that.
    const w = await worker({ url: d.url, id: 'w1', slots: 1, reportRunMs: 4000, taskTypes: ['echo'] });
    expect((await runTask(d, 'a')).status).toBe(200);
    w.hold = true;
    const pending = [runTask(d, 'a')];
    await until(() => w.received === 2);
    pending.push(runTask(d, 'a'));
    await until(() => d.router.queuedCount === 1);
    // Label a's queue is full; one task waits: 1 x 4000 ms / 1 slot.
    const perLabel = await runTask(d, 'a');
    expect(perLabel.status).toBe(503);
    expect(perLabel.body.error.code).toBe('queue_full');
    expect(perLabel.retryAfter).toBe('4');
    // Other labels still queue, up to the total.
    pending.push(runTask(d, 'b'), runTask(d, 'c'));
    await until(() => d.router.queuedCount === 3);
    const total = await runTask(d, 'd');
    expect(total.status).toBe(503);
    expect(total.retryAfter).toBe('12');
    w.hold = false;
    w.release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('keeps Retry-After a sane integer when a worker reports absurd run times', async () => {
    const d = await dispatcher({ maxQueue: 1 });
    const w = await worker({ url: d.url, id: 'w1', slots: 1, reportRunMs: 1e300, taskTypes: ['echo'] });
    expect((await runTask(d, 'a')).status).toBe(200);
    w.hold = true;
    const pending = [runTask(d, 'a')];
    await until(() => w.received === 2);
    pending.push(runTask(d, 'a'));
    await until(() => d.router.queuedCount === 1);
    const refused = await runTask(d, 'a');
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toMatch(/^[1-9]\d{0,3}$/);
    w.hold = false;
    w.release();
    await Promise.all(pending);
  });
});
