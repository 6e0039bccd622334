import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, nextTaskId, post, task } from './harness.js';

// POST /run-task has one handler; plain bodies are read by it directly, compressed or non-UTF-8
// ones through body-parser. Every spelling must give the very same answer.
describe('POST /run-task', () => {
  const h = new Harness();
  afterEach(() => h.cleanup());

  const send = async (
    url: string,
    body: Buffer | string,
    headers: Record<string, string> = {},
    path = '/run-task',
  ) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  it('answers alike for plain, gzip, deflate, br and UTF-16 bodies, and for every path spelling', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w', labels: ['a'] });
    // A fresh task id per spelling (a repeated id is answered from the task store, issue 12):
    // every answer must be identical but for the id.
    const base = task('a');
    const variants: [string, Record<string, string>, string?, ((b: string) => Buffer | string)?][] = [
      ['plain', {}],
      ['gzip', { 'content-encoding': 'gzip' }, undefined, (b) => gzipSync(b)],
      ['deflate', { 'content-encoding': 'deflate' }, undefined, (b) => deflateSync(b)],
      ['br', { 'content-encoding': 'br' }, undefined, (b) => brotliCompressSync(b)],
      [
        'utf-16le',
        { 'content-type': 'application/json; charset=utf-16le' },
        undefined,
        (b) => Buffer.from(b, 'utf16le'),
      ],
      ['query', {}, '/run-task?x=1'],
      ['trailing slash', {}, '/run-task/'],
    ];
    const answers = [];
    for (const [i, [name, headers, path, encode]] of variants.entries()) {
      const taskId = `${base.task_id as string}-${i}`;
      const body = JSON.stringify({ ...base, task_id: taskId });
      const a = await send(d.url, encode ? encode(body) : body, headers, path);
      expect(a.status, name).toBe(200);
      expect(a.type, name).toBe('application/json; charset=utf-8');
      answers.push(a.text.replace(JSON.stringify(taskId), '"<id>"'));
    }
    const expected = JSON.parse(answers[0]!) as Record<string, unknown>;
    expect(expected).toEqual({
      task_id: '<id>',
      status: 'completed',
      worker_id: 'w',
      label: 'a',
      label_miss: false,
      load_ms: 0,
      run_ms: 5,
      attempts: 1,
      result: { echo: { texts: ['hi'] }, worker: 'w' },
    });
    for (const [i, text] of answers.entries()) expect(text, variants[i]![0]).toBe(answers[0]);
  });

  it('gives the same catalog error, message included, either way for bodies that fail validation', async () => {
    const d = await h.dispatcher({ maxBodyBytes: 1024 });
    await h.worker({ url: d.url, id: 'w', labels: ['a'] });
    const bodies: [string, string][] = [
      [JSON.stringify({ ...task('a'), parameters_json: '{nope' }), 'invalid_parameters_json'],
      [JSON.stringify(task('a', { label: 'x'.repeat(300) })), 'invalid_request'],
      [JSON.stringify({ ...task('a'), task_id: 5 }), 'invalid_request'],
      [JSON.stringify({ ...task('a'), pad: 'y'.repeat(2000) }), 'payload_too_large'],
    ];
    for (const [body, code] of bodies) {
      const plain = await send(d.url, body);
      const zipped = await send(d.url, gzipSync(body), { 'content-encoding': 'gzip' });
      expect(plain.status, body.slice(0, 40)).toBe(code === 'payload_too_large' ? 413 : 400);
      expect(JSON.parse(plain.text).error.code, body.slice(0, 40)).toBe(code);
      expect(zipped, body.slice(0, 40)).toEqual(plain);
    }
    // Parse errors come from two parsers; the code and status still agree.
    for (const body of ['{"task_id": 5', '']) {
      const plain = await send(d.url, body);
      const zipped = await send(d.url, gzipSync(body), { 'content-encoding': 'gzip' });
      expect([plain.status, JSON.parse(plain.text).error.code]).toEqual([400, 'invalid_request']);
      expect([zipped.status, JSON.parse(zipped.text).error.code]).toEqual([400, 'invalid_request']);
    }
    // A content coding or charset nobody decodes.
    for (const headers of [
      { 'content-encoding': 'zstd' } as Record<string, string>,
      { 'content-type': 'application/json; charset=latin1' },
    ]) {
      const a = await send(d.url, JSON.stringify(task('a')), headers);
      expect([a.status, JSON.parse(a.text).error.code]).toEqual([400, 'invalid_request']);
    }
  });

  it('checks a long parameters_json (a tensor as JSON) as strictly as a short one', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w', labels: ['a'] });
    const numbers = Array.from({ length: 20_000 }, (_, i) => i / 7);
    const long = JSON.stringify({ texts: ['hi'], data: numbers });
    expect(long.length).toBeGreaterThan(64 * 1024);
    const ok = await send(d.url, JSON.stringify({ ...task('a'), parameters_json: long }));
    expect(ok.status).toBe(200);
    // Cut short, and with a stray comma: refused with JSON.parse's own words, as a short text is.
    for (const bad of [long.slice(0, -1), long.replace(']', ',]')]) {
      const res = await send(d.url, JSON.stringify({ ...task('a'), parameters_json: bad }));
      const err = JSON.parse(res.text).error;
      expect([res.status, err.code]).toEqual([400, 'invalid_parameters_json']);
      let message = '';
      try {
        JSON.parse(bad);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(err.message).toBe(`parameters_json: ${message}`);
    }
  });

  it('checks API keys and the body limit, also without a Content-Length and after inflating', async () => {
    const d = await h.dispatcher({ apiKeys: ['k1'], maxBodyBytes: 1024 });
    await h.worker({ url: d.url, id: 'w', labels: ['a'] });
    const denied = await post(d.url, '/run-task', task('a'));
    expect([denied.status, denied.body.error.code]).toEqual([401, 'unauthorized']);
    expect((await post(d.url, '/run-task', task('a'), { 'x-api-key': 'k1' })).status).toBe(200);
    expect((await post(d.url, '/run-task', task('a'), { authorization: 'Bearer k1' })).status).toBe(200);
    const zippedDenied = await send(d.url, gzipSync(JSON.stringify(task('a'))), {
      'content-encoding': 'gzip',
    });
    expect(zippedDenied.status).toBe(401);
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
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    // Small on the wire, over the limit once inflated.
    const bomb = gzipSync(
      Buffer.concat([Buffer.alloc(64 * 1024, 0x20), Buffer.from(JSON.stringify(task('a')))]),
    );
    expect(bomb.length).toBeLessThan(1024);
    const inflated = await send(d.url, bomb, { 'content-encoding': 'gzip', authorization: 'Bearer k1' });
    expect(inflated.status).toBe(413);
    expect(JSON.parse(inflated.text).error.message).toMatch(/larger than 1024 bytes/);
  });

  it('splices the worker’s result text into the answer as it came, never re-serialised', async () => {
    const d = await h.dispatcher();
    // JSON.stringify(JSON.parse(...)) would turn 1.0 into 1, 1e2 into 100 and drop the spaces.
    const resultJson = '{"x": 1.0, "y": [1e2, "\\u00e9"]}';
    await h.worker({ url: d.url, id: 'w', labels: ['a'], resultJson: () => resultJson });
    const a = await send(d.url, JSON.stringify(task('a')));
    expect(a.status).toBe(200);
    expect(a.text.endsWith(`,"result":${resultJson}}`)).toBe(true);
    expect(JSON.parse(a.text).result).toEqual({ x: 1, y: [100, 'é'] });
  });

  it('answers 502 worker_error for a result that is not one JSON document', async () => {
    const d = await h.dispatcher();
    const bad = ['{"x":', '', '{"a":1} {"b":2}', 'NaN'];
    let n = 0;
    await h.worker({ url: d.url, id: 'w', labels: ['a'], resultJson: () => bad[n++]! });
    for (const text of bad) {
      const a = await send(d.url, JSON.stringify(task('a')));
      expect(a.status, text).toBe(502);
      expect(JSON.parse(a.text).error, text).toEqual({
        code: 'worker_error',
        message: 'worker w returned a result that is not JSON',
      });
    }
  });
});
