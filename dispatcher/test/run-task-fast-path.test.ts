import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, nextTaskId, post, task } from './harness.js';

// POST /run-task runs on plain `http` (fast path) unless the body is compressed or not UTF-8, when
// Express takes it. Both must answer alike.
describe('POST /run-task fast path and Express fallback', () => {
  const harness = new Harness();
  afterEach(() => harness.cleanup());

  const send = async (url: string, body: Buffer | string, headers: Record<string, string>) => {
    const res = await fetch(`${url}/run-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      body: (await res.json()) as { error?: { code: string; message: string }; status?: string },
    };
  };

  it('serves a gzip body through Express and a plain one on the fast path, with the same result shape', async () => {
    const d = await harness.dispatcher();
    await harness.worker({ url: d.url, id: 'w', labels: ['a'] });
    const plain = await send(d.url, JSON.stringify(task('a')), {});
    const zipped = await send(d.url, gzipSync(JSON.stringify(task('a'))), { 'content-encoding': 'gzip' });
    expect(plain.status).toBe(200);
    expect(zipped.status).toBe(200);
    expect(Object.keys(plain.body).sort()).toEqual(Object.keys(zipped.body).sort());
    expect(plain.type).toMatch(/^application\/json/);
  });

  it('gives the same catalog error either way for bad bodies', async () => {
    const d = await harness.dispatcher({ maxBodyBytes: 1024 });
    await harness.worker({ url: d.url, id: 'w', labels: ['a'] });
    const bodies = [
      '{"task_id": 5',
      '[1,2]',
      '"x"',
      JSON.stringify({ ...task('a'), parameters_json: '{nope' }),
      JSON.stringify(task('a', { label: 'x'.repeat(300) })),
      JSON.stringify({ ...task('a'), pad: 'y'.repeat(2000) }),
    ];
    for (const body of bodies) {
      const fast = await send(d.url, body, {});
      const slow = await send(d.url, gzipSync(body), { 'content-encoding': 'gzip' });
      expect(fast.status, body.slice(0, 40)).toBe(400);
      expect(slow.status, body.slice(0, 40)).toBe(400);
      expect(fast.body.error?.code).toBe(slow.body.error?.code);
    }
  });

  it('checks API keys and the body limit without a Content-Length', async () => {
    const d = await harness.dispatcher({ apiKeys: ['k1'], maxBodyBytes: 1024 });
    await harness.worker({ url: d.url, id: 'w', labels: ['a'] });
    expect((await post(d.url, '/run-task', task('a'))).status).toBe(401);
    expect((await post(d.url, '/run-task', task('a'), { 'x-api-key': 'k1' })).status).toBe(200);
    expect((await post(d.url, '/run-task', task('a'), { authorization: 'Bearer k1' })).status).toBe(200);
    // A chunked body (no Content-Length) past the limit.
    const big = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(JSON.stringify({ task_id: nextTaskId(), pad: 'z'.repeat(4096) })));
        c.close();
      },
    });
    const res = await fetch(`${d.url}/run-task`, {
      method: 'POST',
      headers: { authorization: 'Bearer k1' },
      body: big,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
  });
});
