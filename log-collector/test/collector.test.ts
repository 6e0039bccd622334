import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLogCollector, type LogCollectorHandle, type LogCollectorOptions } from '../src/collector.js';
import { postJson, readRecords, silent, tempDir } from './helpers.js';

describe('startLogCollector', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const handles: LogCollectorHandle[] = [];

  const start = async (options: LogCollectorOptions = {}): Promise<LogCollectorHandle> => {
    const handle = await startLogCollector({
      port: 0,
      host: '127.0.0.1',
      dir: tmp.dir,
      runId: 'run-1',
      logger: silent,
      ...options,
    });
    handles.push(handle);
    return handle;
  };

  beforeEach(async () => {
    tmp = await tempDir();
  });

  afterEach(async () => {
    await Promise.all(handles.splice(0).map((handle) => handle.close()));
    await tmp.remove();
  });

  it('writes to <dir>/<runId>/collector.log and answers /health', async () => {
    const collector = await start();
    expect(collector.file).toBe(join(tmp.dir, 'run-1', 'collector.log'));
    expect(collector.url).toBe(`http://127.0.0.1:${collector.port}`);
    const res = await fetch(`${collector.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', run_id: 'run-1' });
    expect((await stat(collector.file)).isFile()).toBe(true);
  });

  it('defaults the run id to a timestamp', async () => {
    const collector = await start({ runId: undefined });
    expect(collector.runId).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
    expect(collector.file).toBe(join(tmp.dir, collector.runId, 'collector.log'));
  });

  it('ingests a JSON array and NDJSON, adding received_at', async () => {
    const collector = await start();
    const a = await postJson(collector.url, JSON.stringify([{ n: 1 }, { n: 2, nested: { x: 'y' } }]));
    expect(a).toMatchObject({ status: 200, json: { accepted: 2 } });
    const b = await postJson(collector.url, '{"n":3}\n{"n":4}\n', 'application/x-ndjson');
    expect(b).toMatchObject({ status: 200, json: { accepted: 2 } });
    await collector.flush();
    const records = await readRecords(collector.file);
    expect(records.map((record) => record.n)).toEqual([1, 2, 3, 4]);
    expect(records[1]?.nested).toEqual({ x: 'y' });
    for (const record of records) expect(typeof record.received_at).toBe('number');
    const stats = await (await fetch(`${collector.url}/stats`)).json();
    expect(stats).toMatchObject({ records_written: 4, batches: 2, rejected: 0, throttled: 0, buffered: 0 });
  });

  it("keeps each sender's order across many batches", async () => {
    const collector = await start({ flushIntervalMs: 5 });
    const sender = async (name: string): Promise<void> => {
      for (let batch = 0; batch < 40; batch++) {
        const records = Array.from({ length: 25 }, (_, i) => ({ sender: name, seq: batch * 25 + i }));
        const ndjson = batch % 2 === 1;
        const body = ndjson ? records.map((r) => JSON.stringify(r)).join('\n') : JSON.stringify(records);
        const res = await postJson(collector.url, body, ndjson ? 'application/x-ndjson' : 'application/json');
        expect(res.status).toBe(200);
      }
    };
    await Promise.all([sender('a'), sender('b'), sender('c')]);
    await collector.close();
    const records = await readRecords(collector.file);
    expect(records).toHaveLength(3000);
    for (const name of ['a', 'b', 'c']) {
      const seqs = records.filter((record) => record.sender === name).map((record) => record.seq);
      expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    }
  });

  it('flushes records sent just before close()', async () => {
    // A long interval: only close() can have written these.
    const collector = await start({ flushIntervalMs: 60_000 });
    const res = await postJson(collector.url, JSON.stringify([{ last: 1 }, { last: 2 }]));
    expect(res.status).toBe(200);
    expect(await readFile(collector.file, 'utf8')).toBe('');
    await collector.close();
    expect((await readRecords(collector.file)).map((record) => record.last)).toEqual([1, 2]);
  });

  it('close() is safe to call twice and refuses connections afterwards', async () => {
    const collector = await start();
    await Promise.all([collector.close(), collector.close()]);
    await collector.close();
    await expect(fetch(`${collector.url}/health`)).rejects.toThrow();
  });

  it('answers bad input with 400/415 JSON errors and writes nothing', async () => {
    const collector = await start();
    const cases: [string, string, number, string][] = [
      ['not json', 'application/json', 400, 'invalid_json'],
      ['{"a":1}', 'application/json', 400, 'invalid_json'],
      ['[{"a":1}, 2]', 'application/json', 400, 'invalid_record'],
      ['{"a":1}\n{broken\n', 'application/x-ndjson', 400, 'invalid_json'],
      ['{"a":1}\n[1,2]\n', 'application/x-ndjson', 400, 'invalid_record'],
      ['[{"a":1}]', 'text/plain', 415, 'unsupported_media_type'],
    ];
    for (const [body, type, status, code] of cases) {
      const res = await postJson(collector.url, body, type);
      expect(res.status, body).toBe(status);
      expect(res.json).toEqual({ error: { code, message: expect.any(String) } });
    }
    await collector.flush();
    expect(await readFile(collector.file, 'utf8')).toBe('');
    expect(collector.stats()).toMatchObject({ rejected: cases.length, batches: 0, records_written: 0 });
  });

  it('answers 404 and 405 with JSON errors', async () => {
    const collector = await start();
    const missing = await fetch(`${collector.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
    const wrong = await fetch(`${collector.url}/ingest`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await wrong.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
  });

  it('answers 413 to an oversized body, declared or streamed, and writes nothing', async () => {
    const collector = await start({ maxBodyBytes: 1024 });
    const big = JSON.stringify([{ pad: 'x'.repeat(2000) }]);
    const declared = await postJson(collector.url, big);
    expect(declared.status).toBe(413);
    expect(declared.json).toMatchObject({ error: { code: 'body_too_large' } });

    // Chunked, no content-length: the limit is enforced while reading.
    const chunks = [new TextEncoder().encode(big.slice(0, 900)), new TextEncoder().encode(big.slice(900))];
    const streamed = await fetch(`${collector.url}/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ error: { code: 'body_too_large' } });

    // Still serving, and nothing of the refused bodies was written.
    expect((await postJson(collector.url, '[{"ok":true}]')).status).toBe(200);
    await collector.flush();
    expect(await readRecords(collector.file)).toEqual([{ ok: true, received_at: expect.any(Number) }]);
  });

  it('answers 503 with Retry-After when the buffer is full, and takes records again once it drained', async () => {
    const collector = await start({ maxBufferRecords: 10, flushIntervalMs: 60_000, retryAfterSeconds: 2 });
    const batch = (n: number, from: number): string =>
      JSON.stringify(Array.from({ length: n }, (_, i) => ({ seq: from + i })));
    expect((await postJson(collector.url, batch(8, 0))).status).toBe(200);
    const full = await postJson(collector.url, batch(5, 8));
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('2');
    expect(full.json).toMatchObject({ error: { code: 'buffer_full' } });
    expect(collector.stats()).toMatchObject({ throttled: 1, buffered: 8 });

    // More records than the buffer can ever hold are bad input, not a reason to retry.
    const huge = await postJson(collector.url, batch(11, 100));
    expect(huge.status).toBe(413);
    expect(huge.json).toMatchObject({ error: { code: 'batch_too_large' } });

    await collector.flush();
    expect((await postJson(collector.url, batch(5, 8))).status).toBe(200);
    await collector.close();
    expect((await readRecords(collector.file)).map((record) => record.seq)).toEqual(
      Array.from({ length: 13 }, (_, i) => i),
    );
  });

  it('appends to an existing run file', async () => {
    const first = await start();
    await postJson(first.url, '[{"run":1}]');
    await first.close();
    const second = await start();
    await postJson(second.url, '[{"run":2}]');
    await second.close();
    expect((await readRecords(second.file)).map((record) => record.run)).toEqual([1, 2]);
  });

  it('throws at once on bad options', async () => {
    await expect(startLogCollector({ runId: '../escape', logger: silent })).rejects.toThrow(/runId/);
    await expect(startLogCollector({ port: -1, logger: silent })).rejects.toThrow(/port/);
  });
});
