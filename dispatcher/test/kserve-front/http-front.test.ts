/**
 * The dispatcher's KServe v2 HTTP front on real sockets: a real dispatcher, fake workers speaking
 * protobuf over a real WebSocket. Request and response bodies are NVIDIA's Triton Python client's
 * own bytes (tritonclient.http, github.com/triton-inference-server/client, recorded in
 * kserve/test/fixtures/tritonclient-vectors.json by tritonclient-vectors.py), so the binary
 * extension's framing is tested against bytes this project did not write.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeInferRequest } from '@smart-routing/kserve';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness } from '../harness.js';
import type { FakeWorkerOptions } from '../fake-worker.js';
import { tritonclientVector as vector } from '../../../kserve/test/fixtures/tritonclient-vectors.js';

const KSERVE_TYPES = ['kserve_infer', 'kserve_metadata', 'embed_texts'];

const h = new Harness();
afterEach(() => h.cleanup());

interface RawAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
}

async function v2(
  url: string,
  path: string,
  init: { method?: string; body?: Uint8Array; headers?: Record<string, string> } = {},
): Promise<RawAnswer> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: init.headers,
    body: init.body,
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

const errorOf = (a: RawAnswer): unknown => JSON.parse(a.body.toString('utf8'));

/** A worker holding `labels` that answers every infer with `answer`'s bytes. */
function inferWorker(
  url: string,
  id: string,
  labels: string[],
  answer: FakeWorkerOptions['inferAnswer'],
  extra: Partial<FakeWorkerOptions> = {},
) {
  return h.worker({ url, id, labels, taskTypes: KSERVE_TYPES, runMs: 1, inferAnswer: answer, ...extra });
}

describe('POST /v2/models/{model}/infer', () => {
  it('passes tritonclient binary bytes to the worker and the worker bytes back, untouched', async () => {
    const d = await h.dispatcher();
    const req = vector('docs-example-request');
    const res = vector('docs-example-response');
    const w = await inferWorker(d.url, 'w1', ['m1'], () => ({
      body: res.body,
      headerLength: res.headerLength!,
    }));
    const a = await v2(d.url, '/v2/models/m1/infer', {
      body: req.body,
      headers: { 'Inference-Header-Content-Length': String(req.headerLength) },
    });
    expect(a.status).toBe(200);
    expect(a.body.equals(res.body)).toBe(true);
    expect(a.headers.get('inference-header-content-length')).toBe(String(res.headerLength));
    expect(a.headers.get('content-type')).toBe('application/octet-stream');
    const [task] = w.received;
    expect(task!.taskType).toBe('kserve_infer');
    expect(task!.label).toBe('m1');
    expect(task!.parametersJson).toBe('{}');
    expect(Buffer.from(task!.inferRequest!).equals(req.body)).toBe(true);
    expect(task!.inferHeaderLength).toBe(req.headerLength);
  });

  it('passes a JSON-only body (no header) with header length 0 and answers JSON', async () => {
    const d = await h.dispatcher();
    const req = vector('json-only-request');
    const answer = Buffer.from(
      '{"model_name":"m1","outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[2.5]}]}',
    );
    const w = await inferWorker(d.url, 'w1', ['m1'], () => ({ body: answer, headerLength: 0 }));
    const a = await v2(d.url, '/v2/models/m1/infer', { body: req.body });
    expect(a.status).toBe(200);
    expect(a.body.equals(answer)).toBe(true);
    expect(a.headers.get('content-type')).toBe('application/json');
    expect(a.headers.get('inference-header-content-length')).toBeNull();
    expect(Buffer.from(w.received[0]!.inferRequest!).equals(req.body)).toBe(true);
    expect(w.received[0]!.inferHeaderLength).toBe(0);
  });

  it('routes by model name to the holder, on the versions route too', async () => {
    const d = await h.dispatcher();
    const answer = (id: string) => () => ({ body: Buffer.from(`{"from":"${id}"}`), headerLength: 0 });
    const w1 = await inferWorker(d.url, 'w1', ['m1'], answer('w1'));
    const w2 = await inferWorker(d.url, 'w2', ['m2'], answer('w2'));
    const body = vector('json-only-request').body;
    const a = await v2(d.url, '/v2/models/m2/infer', { body });
    const b = await v2(d.url, '/v2/models/m1/versions/1/infer', { body });
    expect(a.body.toString()).toBe('{"from":"w2"}');
    expect(b.body.toString()).toBe('{"from":"w1"}');
    expect(w2.received.map((t) => t.label)).toEqual(['m2']);
    expect(w1.received.map((t) => t.label)).toEqual(['m1']);
  });

  it('carries a 1x3x320x320 FP32 input (1.2 MB, over the /run-task limit) byte for byte', async () => {
    const d = await h.dispatcher();
    const data = new Float32Array(3 * 320 * 320).map((_, i) => Math.sin(i));
    const encoded = encodeInferRequest({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 320, 320], data }],
    });
    const body = Buffer.concat(encoded.chunks);
    expect(body.length).toBeGreaterThan(d.options.maxBodyBytes);
    // The worker echoes the tensor bytes back as its (binary) output.
    const w = await inferWorker(d.url, 'w1', ['img'], (t) => {
      const raw = Buffer.from(t.inferRequest!).subarray(t.inferHeaderLength!);
      const head = Buffer.from(
        JSON.stringify({
          model_name: 'img',
          outputs: [
            {
              name: 'y',
              datatype: 'FP32',
              shape: [1, 3, 320, 320],
              parameters: { binary_data_size: raw.length },
            },
          ],
        }),
      );
      return { body: Buffer.concat([head, raw]), headerLength: head.length };
    });
    const a = await v2(d.url, '/v2/models/img/infer', {
      body,
      headers: { 'Inference-Header-Content-Length': String(encoded.headerLength) },
    });
    expect(a.status).toBe(200);
    expect(Buffer.from(w.received[0]!.inferRequest!).equals(body)).toBe(true);
    const hl = Number(a.headers.get('inference-header-content-length'));
    const out = a.body.subarray(hl);
    expect(out.equals(Buffer.from(data.buffer))).toBe(true);
  });
});

describe('v2 client going away', () => {
  it('abandons the task when the client closes before the answer', async () => {
    const d = await h.dispatcher();
    const w = await inferWorker(d.url, 'w1', ['m1'], undefined, { answer: false });
    const abort = new AbortController();
    const pending = fetch(`${d.url}/v2/models/m1/infer`, {
      method: 'POST',
      body: vector('json-only-request').body,
      signal: abort.signal,
    }).catch((err: Error) => err.name);
    await w.waitForTasks(1);
    abort.abort();
    expect(await pending).toBe('AbortError');
    await eventually(async () =>
      /smart_routing_tasks_total\{outcome="abandoned"\} 1/.test(
        await (await fetch(`${d.url}/metrics`)).text(),
      ),
    );
  });
});

async function eventually(check: () => Promise<boolean>): Promise<void> {
  // An overall limit, not a count of polls: each poll is slower on a loaded machine.
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('v2 errors in Triton shape', () => {
  const body = vector('json-only-request').body;

  it('404 for a model the holder lacks, and for one MODEL_REPOSITORY lacks without asking a worker', async () => {
    const d = await h.dispatcher();
    await inferWorker(d.url, 'w1', [], undefined, { missingLabels: ['nope'] });
    const a = await v2(d.url, '/v2/models/nope/infer', { body });
    expect(a.status).toBe(404);
    expect(errorOf(a)).toEqual({ error: expect.stringContaining('nope') });

    const repo = mkdtempSync(join(tmpdir(), 'v2-repo-'));
    try {
      const d2 = await h.dispatcher({ modelRepository: repo });
      const w = await inferWorker(d2.url, 'w2', [], undefined);
      const b = await v2(d2.url, '/v2/models/absent/infer', { body });
      expect(b.status).toBe(404);
      expect(errorOf(b)).toEqual({ error: expect.stringContaining('absent') });
      expect(w.received).toHaveLength(0);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it('400 for a bad Inference-Header-Content-Length, a body that is no JSON object, and the model server refusal', async () => {
    const d = await h.dispatcher();
    const w = await inferWorker(d.url, 'w1', ['m1'], () => ({
      error: { code: 'bad_parameters', message: "unexpected shape for input 'x' for model 'm1'" },
    }));
    const bad = await v2(d.url, '/v2/models/m1/infer', {
      body,
      headers: { 'Inference-Header-Content-Length': String(body.length + 1) },
    });
    expect(bad.status).toBe(400);
    expect(errorOf(bad)).toEqual({ error: expect.stringContaining('Inference-Header-Content-Length') });
    const notJson = await v2(d.url, '/v2/models/m1/infer', { body: Buffer.from('[1,2,3]') });
    expect(notJson.status).toBe(400);
    expect(errorOf(notJson)).toEqual({ error: expect.any(String) });
    expect(w.received).toHaveLength(0);
    const refused = await v2(d.url, '/v2/models/m1/infer', { body });
    expect(refused.status).toBe(400);
    expect(errorOf(refused)).toEqual({ error: expect.stringContaining("unexpected shape for input 'x'") });
  });

  it('503 with Retry-After when the model servers are unavailable', async () => {
    const d = await h.dispatcher({ maxAttempts: 1 });
    await inferWorker(d.url, 'w1', ['m1'], () => ({
      error: { code: 'model_server_unavailable', message: 'connection refused' },
    }));
    const a = await v2(d.url, '/v2/models/m1/infer', { body });
    expect(a.status).toBe(503);
    expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(errorOf(a)).toEqual({ error: expect.stringContaining('connection refused') });
  });

  it('504 when the task does not finish in time', async () => {
    const d = await h.dispatcher({ taskTimeoutMs: 100 });
    await inferWorker(d.url, 'w1', ['m1'], undefined, { answer: false });
    const a = await v2(d.url, '/v2/models/m1/infer', { body });
    expect(a.status).toBe(504);
    expect(errorOf(a)).toEqual({ error: expect.stringContaining('did not finish') });
  });

  it('404 for an unknown v2 path and 405 for a wrong method, in the same shape', async () => {
    const d = await h.dispatcher();
    const a = await v2(d.url, '/v2/repository/index', { method: 'POST', body: Buffer.from('{}') });
    expect(a.status).toBe(404);
    expect(errorOf(a)).toEqual({ error: expect.any(String) });
    const b = await v2(d.url, '/v2/models/m1/infer');
    expect(b.status).toBe(405);
    expect(errorOf(b)).toEqual({ error: expect.any(String) });
  });
});

describe('v2 body limit', () => {
  it('413 for a streamed body over MAX_INFER_BODY_BYTES, while /run-task keeps its own limit', async () => {
    const d = await h.dispatcher({ maxInferBodyBytes: 4096 });
    const w = await inferWorker(d.url, 'w1', ['m1'], () => ({ body: Buffer.from('{}'), headerLength: 0 }));
    const big = Buffer.concat([
      Buffer.from('{"inputs":[],"pad":"'),
      Buffer.alloc(8192, 0x61),
      Buffer.from('"}'),
    ]);
    const a = await v2(d.url, '/v2/models/m1/infer', { body: big });
    expect(a.status).toBe(413);
    expect(errorOf(a)).toEqual({ error: expect.stringContaining('4096') });
    expect(w.received).toHaveLength(0);
    // The same size is fine on /run-task, whose limit is MAX_BODY_BYTES (1 MiB).
    expect(d.options.maxBodyBytes).toBe(1024 * 1024);
  });

  it('413 on the declared Content-Length, readable before the body is sent', async () => {
    const d = await h.dispatcher({ maxInferBodyBytes: 4096 });
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(d.port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('utf8');
        if (text.includes('\r\n\r\n') && text.endsWith('}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      // Only the headers: a body of 10 MB is announced and never sent.
      socket.write(
        'POST /v2/models/m1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${10 * 1024 * 1024}\r\n\r\n`,
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
      error: expect.stringContaining('4096'),
    });
  });

  it('413 instead of 100 Continue for Expect: 100-continue', async () => {
    const d = await h.dispatcher({ maxInferBodyBytes: 4096 });
    const got = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const r = request({
        port: d.port,
        host: '127.0.0.1',
        method: 'POST',
        path: '/v2/models/m1/infer',
        headers: { 'content-length': 100_000, expect: '100-continue' },
      });
      r.on('continue', () => (continued = true));
      r.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, continued }));
      });
      r.on('error', reject);
      r.flushHeaders();
    });
    expect(got.continued).toBe(false);
    expect(got.status).toBe(413);
    expect(JSON.parse(got.body)).toEqual({ error: expect.any(String) });
  });
});

describe('v2 auth (API_KEYS)', () => {
  it('needs a key for infer, metadata and ready; health stays open', async () => {
    const d = await h.dispatcher({ apiKeys: ['k1'] });
    await inferWorker(d.url, 'w1', ['m1'], () => ({ body: Buffer.from('{"ok":1}'), headerLength: 0 }));
    const body = vector('json-only-request').body;
    const none = await v2(d.url, '/v2/models/m1/infer', { body });
    expect(none.status).toBe(401);
    expect(errorOf(none)).toEqual({ error: expect.any(String) });
    expect((await v2(d.url, '/v2/models/m1/ready')).status).toBe(401);
    expect((await v2(d.url, '/v2')).status).toBe(401);
    const keyed = await v2(d.url, '/v2/models/m1/infer', { body, headers: { authorization: 'Bearer k1' } });
    expect(keyed.status).toBe(200);
    expect(keyed.body.toString()).toBe('{"ok":1}');
    const viaHeader = await v2(d.url, '/v2/models/m1/ready', { headers: { 'x-api-key': 'k1' } });
    expect(viaHeader.status).toBe(200);
    expect((await v2(d.url, '/v2/health/live')).status).toBe(200);
    expect((await v2(d.url, '/v2/health/ready')).status).toBe(200);
  });
});

describe('v2 metadata and readiness', () => {
  it('GET /v2 names the server and the extensions it supports', async () => {
    const d = await h.dispatcher();
    const a = await v2(d.url, '/v2');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual({
      name: 'smart-routing',
      version: expect.any(String),
      extensions: ['binary_tensor_data'],
    });
  });

  it('health/ready and models/{m}/ready follow the connected workers', async () => {
    const d = await h.dispatcher();
    expect((await v2(d.url, '/v2/health/live')).status).toBe(200);
    const notReady = await v2(d.url, '/v2/health/ready');
    expect(notReady.status).toBe(503);
    expect(errorOf(notReady)).toEqual({ error: expect.any(String) });
    await inferWorker(d.url, 'w1', ['m1'], undefined);
    expect((await v2(d.url, '/v2/health/ready')).status).toBe(200);
    expect((await v2(d.url, '/v2/models/m1/ready')).status).toBe(200);
    expect((await v2(d.url, '/v2/models/m1/versions/1/ready')).status).toBe(200);
    expect((await v2(d.url, '/v2/models/m2/ready')).status).toBe(503);
  });

  it('answers model metadata from a holder (kserve_metadata) without MODEL_REPOSITORY', async () => {
    const d = await h.dispatcher();
    const meta = {
      name: 'm1',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
    };
    const w = await inferWorker(d.url, 'w1', ['m1'], undefined, { resultJson: () => JSON.stringify(meta) });
    const a = await v2(d.url, '/v2/models/m1');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual(meta);
    expect(w.received.map((t) => [t.taskType, t.label])).toEqual([['kserve_metadata', 'm1']]);
  });

  it('answers model metadata from the repository config.pbtxt without asking a worker', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'v2-repo-'));
    try {
      mkdirSync(join(repo, 'cls', '1'), { recursive: true });
      writeFileSync(
        join(repo, 'cls', 'config.pbtxt'),
        'name: "cls"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n' +
          'input [ { name: "image" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] } ]\n' +
          'output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]\n',
      );
      const d = await h.dispatcher({ modelRepository: repo });
      const w = await inferWorker(d.url, 'w1', [], undefined);
      const a = await v2(d.url, '/v2/models/cls');
      expect(a.status).toBe(200);
      expect(JSON.parse(a.body.toString())).toEqual({
        name: 'cls',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 224, 224] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
      });
      expect(w.received).toHaveLength(0);
      // In the repository and a worker can load it: ready.
      expect((await v2(d.url, '/v2/models/cls/ready')).status).toBe(200);
      const missing = await v2(d.url, '/v2/models/other');
      expect(missing.status).toBe(404);
      expect(errorOf(missing)).toEqual({ error: expect.stringContaining('other') });
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
