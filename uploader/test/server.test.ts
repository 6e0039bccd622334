import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseModelConfig } from '@smart-routing/model-repo';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUploader, type UploaderHandle, type UploaderOptions } from '../src/server.js';
import {
  buildEmbeddingFixture,
  FIXTURE_SPECIAL_IDS,
  writeEmbeddingFixture,
  type EmbeddingFixture,
} from './fixtures.js';
import { startFakeHub, type FakeHub } from './hub-server.js';

const MODEL_ID = 'sentence-transformers/all-MiniLM-L6-v2';
const MODEL_NAME = 'sentence-transformers--all-MiniLM-L6-v2';

let hub: FakeHub;
let repo: string;
let scratch: string;
let uploader: UploaderHandle | undefined;
let logLines: string[];

function capturingLogger(): pino.Logger {
  logLines = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  return pino({ level: 'debug' }, stream);
}

async function start(options: Partial<UploaderOptions> = {}): Promise<UploaderHandle> {
  uploader = await startUploader({
    repository: repo,
    port: 0,
    host: '127.0.0.1',
    hfEndpoint: hub.url,
    logger: capturingLogger(),
    ...options,
  });
  return uploader;
}

/** A response body of the uploader: success fields or an error. */
interface ApiBody {
  status?: string;
  model_name?: string;
  message?: string;
  error?: { code: string; message: string };
}

async function post(body: unknown, path = '/upload-model'): Promise<{ status: number; body: ApiBody }> {
  const res = await fetch(`${uploader!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ApiBody };
}

function serveFixture(modelId: string, fixture: EmbeddingFixture, revision = 'main'): void {
  hub.setModel(
    modelId,
    {
      'onnx/model.onnx': fixture.onnx,
      'tokenizer.json': fixture.tokenizerJson,
      'tokenizer_config.json': fixture.tokenizerConfigJson,
      'config.json': '{"model_type":"bert"}',
    },
    revision,
  );
}

/** Runs the published model on token ids and returns last_hidden_state. */
async function runModel(
  modelPath: string,
  ids: number[][],
): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const seq = ids[0]!.length;
    const flat = BigInt64Array.from(ids.flat().map(BigInt));
    const mask = BigInt64Array.from(ids.flat().map((id) => (id === 0 ? 0n : 1n)));
    const out = await session.run({
      input_ids: new ort.Tensor('int64', flat, [ids.length, seq]),
      attention_mask: new ort.Tensor('int64', mask, [ids.length, seq]),
    });
    const t = out.last_hidden_state!;
    return { dims: t.dims, data: t.data as Float32Array };
  } finally {
    await session.release();
  }
}

beforeEach(async () => {
  hub = await startFakeHub();
  scratch = await mkdtemp(join(tmpdir(), 'uploader-test-'));
  repo = join(scratch, 'models');
});

afterEach(async () => {
  await uploader?.close();
  uploader = undefined;
  await hub.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('POST /upload-model from the hub', () => {
  it('publishes config.pbtxt from the graph, 1/model.onnx and the tokenizer files', async () => {
    const fixture = buildEmbeddingFixture({ hiddenSize: 8 });
    serveFixture(MODEL_ID, fixture);
    await start();
    const res = await post({ model_id: MODEL_ID, max_batch_size: 16 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'uploaded', model_name: MODEL_NAME });
    expect(res.body.message).toContain(MODEL_NAME);

    const dir = join(repo, MODEL_NAME);
    const config = parseModelConfig(await readFile(join(dir, 'config.pbtxt'), 'utf8'));
    expect(config).toEqual({
      name: MODEL_NAME,
      platform: 'onnxruntime_onnx',
      maxBatchSize: 16,
      input: [
        { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 8] }],
    });
    expect(Buffer.compare(await readFile(join(dir, '1', 'model.onnx')), Buffer.from(fixture.onnx))).toBe(0);
    expect(await readFile(join(dir, 'tokenizer.json'), 'utf8')).toBe(fixture.tokenizerJson);
    expect(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')).toBe(fixture.tokenizerConfigJson);
    // Nothing else: no staging or aside folders left behind.
    expect(await readdir(repo)).toEqual([MODEL_NAME]);

    // The published model really runs and gathers the fixture's rows (padding masked out).
    const fox = fixture.vocab.get('fox')!;
    const { dims, data } = await runModel(join(dir, '1', 'model.onnx'), [
      [FIXTURE_SPECIAL_IDS['[CLS]'], fox, 0],
    ]);
    expect(dims).toEqual([1, 3, 8]);
    expect(Array.from(data.slice(8, 16))).toEqual(Array.from(fixture.row(fox)));
    // Masked positions are zero (-0 counts as 0).
    expect(Array.from(data.slice(16, 24), (v) => v + 0)).toEqual(new Array(8).fill(0));
  });

  it('keeps the batch dimension when max_batch_size is 0, defaults to 8 otherwise', async () => {
    serveFixture('org/unbatched', buildEmbeddingFixture());
    serveFixture('org/defaulted', buildEmbeddingFixture());
    await start();
    expect((await post({ model_id: 'org/unbatched', max_batch_size: 0 })).status).toBe(201);
    expect((await post({ model_id: 'org/defaulted' })).status).toBe(201);
    const unbatched = parseModelConfig(await readFile(join(repo, 'org--unbatched', 'config.pbtxt'), 'utf8'));
    expect(unbatched.maxBatchSize).toBe(0);
    expect(unbatched.input[0]!.dims).toEqual([-1, -1]);
    expect(unbatched.output[0]!.dims).toEqual([-1, -1, 8]);
    const defaulted = parseModelConfig(await readFile(join(repo, 'org--defaulted', 'config.pbtxt'), 'utf8'));
    expect(defaulted.maxBatchSize).toBe(8);
  });

  it('downloads the requested revision', async () => {
    serveFixture('org/m', buildEmbeddingFixture({ hiddenSize: 4 }), 'v2');
    await start();
    expect((await post({ model_id: 'org/m' })).status).toBe(404);
    expect((await post({ model_id: 'org/m', revision: 'v2' })).status).toBe(201);
    expect(hub.requests.some((r) => r.path === '/org/m/resolve/v2/onnx/model.onnx')).toBe(true);
  });

  it('sends HF_TOKEN as a bearer token and never logs it', async () => {
    const token = 'hf_secret_token_1234567890';
    serveFixture(MODEL_ID, buildEmbeddingFixture());
    await start({ hfToken: token });
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    const gets = hub.requests.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThanOrEqual(3);
    for (const r of gets) expect(r.authorization).toBe(`Bearer ${token}`);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('')).not.toContain(token);
    expect(logLines.join('')).toContain('"event":"download_finished"');
  });

  it('sends no Authorization header without a token', async () => {
    serveFixture(MODEL_ID, buildEmbeddingFixture());
    await start();
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('answers 409 model_exists when overwrite is false and leaves the files untouched', async () => {
    serveFixture(MODEL_ID, buildEmbeddingFixture({ seed: 1 }));
    await start();
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    const modelPath = join(repo, MODEL_NAME, '1', 'model.onnx');
    const before = await readFile(modelPath);
    const mtime = (await stat(modelPath)).mtimeMs;

    serveFixture(MODEL_ID, buildEmbeddingFixture({ seed: 2 }));
    const res = await post({ model_id: MODEL_ID, overwrite: false });
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('model_exists');
    expect(Buffer.compare(await readFile(modelPath), before)).toBe(0);
    expect((await stat(modelPath)).mtimeMs).toBe(mtime);
    expect(await readdir(repo)).toEqual([MODEL_NAME]);
  });

  it('replaces the model when overwrite is true', async () => {
    serveFixture(MODEL_ID, buildEmbeddingFixture({ hiddenSize: 8 }));
    await start();
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    const replacement = buildEmbeddingFixture({ hiddenSize: 6, seed: 9 });
    serveFixture(MODEL_ID, replacement);
    const res = await post({ model_id: MODEL_ID, overwrite: true, max_batch_size: 4 });
    expect(res.status).toBe(201);
    expect(res.body.message).toContain('replaced');
    const config = parseModelConfig(await readFile(join(repo, MODEL_NAME, 'config.pbtxt'), 'utf8'));
    expect(config.maxBatchSize).toBe(4);
    expect(config.output[0]!.dims).toEqual([-1, 6]);
    const bytes = await readFile(join(repo, MODEL_NAME, '1', 'model.onnx'));
    expect(Buffer.compare(bytes, Buffer.from(replacement.onnx))).toBe(0);
    expect(await readdir(repo)).toEqual([MODEL_NAME]);
  });

  it('answers 409 upload_in_progress to a second upload of the same name', async () => {
    const fixture = buildEmbeddingFixture();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    serveFixture(MODEL_ID, fixture);
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: fixture.onnx, gate });
    await start();
    const first = post({ model_id: MODEL_ID });
    // Wait until the first upload is at the held download.
    while (!hub.requests.some((r) => r.path.endsWith('/onnx/model.onnx')))
      await new Promise((r) => setTimeout(r, 10));
    const second = await post({ model_id: MODEL_ID, overwrite: true });
    expect(second.status).toBe(409);
    expect(second.body.error?.code).toBe('upload_in_progress');
    release();
    expect((await first).status).toBe(201);
  });

  it('answers 400 invalid_model_id for bad ids and touches nothing', async () => {
    await start();
    for (const id of [
      '',
      '../etc/passwd',
      'a/../b',
      'a/b/c',
      '-leading',
      'a b',
      'org/..',
      '/abs',
      'x'.repeat(201),
    ]) {
      const res = await post({ model_id: id });
      expect(res.status, id).toBe(400);
      expect(res.body.error?.code, id).toBe('invalid_model_id');
    }
    expect(hub.requests).toEqual([]);
    await expect(stat(repo)).rejects.toThrow();
  });

  it('answers 400 invalid_request for bad bodies', async () => {
    await start();
    const cases: unknown[] = [
      {},
      { model_id: 5 },
      { model_id: 'a/b', max_batch_size: -1 },
      { model_id: 'a/b', max_batch_size: 1.5 },
      { model_id: 'a/b', overwrite: 'yes' },
      { model_id: 'a/b', source: 'ftp' },
      { model_id: 'a/b', source: 'local' },
      { model_id: 'a/b', path: '/tmp' },
      { model_id: 'a/b', revision: '../x' },
      [1, 2],
      '{not json',
    ];
    for (const body of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error?.code, JSON.stringify(body)).toBe('invalid_request');
      expect(typeof res.body.error?.message).toBe('string');
    }
    const noType = await fetch(`${uploader!.url}/upload-model`, { method: 'POST', body: 'model_id=a' });
    expect(noType.status).toBe(400);
  });

  it('answers 404 model_not_found for a model the hub does not have', async () => {
    await start();
    const res = await post({ model_id: 'nobody/nothing' });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('model_not_found');
    expect(await readdir(repo)).toEqual([]);
  });

  it('answers 422 no_onnx_export when the repository exists without onnx/model.onnx', async () => {
    hub.setModel('org/pytorch-only', { 'config.json': '{}', 'pytorch_model.bin': 'weights' });
    await start();
    const res = await post({ model_id: 'org/pytorch-only' });
    expect(res.status).toBe(422);
    expect(res.body.error?.code).toBe('no_onnx_export');
    expect(await readdir(repo)).toEqual([]);
  });

  it('answers 502 hub_error when the hub fails', async () => {
    hub.failAll = 500;
    await start();
    const res = await post({ model_id: MODEL_ID });
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe('hub_error');
    expect(res.body.error?.message).toContain('500');
    expect(await readdir(repo)).toEqual([]);
  });

  it('answers 502 hub_error when the hub is unreachable', async () => {
    const closedHub = hub.url;
    await hub.close();
    await start({ hfEndpoint: closedHub });
    const res = await post({ model_id: MODEL_ID });
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe('hub_error');
  });

  it('answers 403 hub_unauthorized when the hub refuses the token', async () => {
    serveFixture(MODEL_ID, buildEmbeddingFixture());
    hub.set(MODEL_ID, 'tokenizer.json', { status: 401 });
    await start({ hfToken: 'hf_wrong' });
    const res = await post({ model_id: MODEL_ID });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('hub_unauthorized');
    expect(res.body.error?.message).not.toContain('hf_wrong');
  });

  it('fails an interrupted download (socket destroyed mid-body) and leaves no folder', async () => {
    const fixture = buildEmbeddingFixture();
    serveFixture(MODEL_ID, fixture);
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: fixture.onnx, destroyAfter: 100 });
    await start();
    const res = await post({ model_id: MODEL_ID });
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe('hub_error');
    expect(res.body.error?.message).toMatch(/interrupted|ended/);
    expect(await readdir(repo)).toEqual([]);
  });

  it('fails a download shorter than its content-length and leaves no folder', async () => {
    const fixture = buildEmbeddingFixture();
    serveFixture(MODEL_ID, fixture);
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: fixture.onnx, contentLength: fixture.onnx.length + 1000 });
    await start();
    const res = await post({ model_id: MODEL_ID });
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe('hub_error');
    expect(await readdir(repo)).toEqual([]);
  });

  it('answers 422 invalid_onnx for corrupt model bytes and leaves no folder', async () => {
    const fixture = buildEmbeddingFixture();
    serveFixture(MODEL_ID, fixture);
    const corrupt = Buffer.from(fixture.onnx);
    corrupt.fill(0xff, 20, 400);
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: corrupt });
    hub.set('org/garbage', 'onnx/model.onnx', { body: 'this is not a protobuf at all' });
    await start();
    for (const id of [MODEL_ID, 'org/garbage']) {
      const res = await post({ model_id: id });
      expect(res.status, id).toBe(422);
      expect(res.body.error?.code, id).toBe('invalid_onnx');
    }
    expect(await readdir(repo)).toEqual([]);
    // The service survived the bad files.
    expect((await fetch(`${uploader!.url}/health`)).status).toBe(200);
  });

  it('leaves an existing model intact when its replacement fails', async () => {
    const fixture = buildEmbeddingFixture();
    serveFixture(MODEL_ID, fixture);
    await start();
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    const before = await readFile(join(repo, MODEL_NAME, '1', 'model.onnx'));
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: 'garbage' });
    const res = await post({ model_id: MODEL_ID, overwrite: true });
    expect(res.status).toBe(422);
    expect(Buffer.compare(await readFile(join(repo, MODEL_NAME, '1', 'model.onnx')), before)).toBe(0);
    expect(await readdir(repo)).toEqual([MODEL_NAME]);
  });
});

describe('POST /upload-model from a local folder', () => {
  it('copies model.onnx (flat or onnx/) and the tokenizer files', async () => {
    const flat = await writeEmbeddingFixture(join(scratch, 'flat'), { layout: 'flat', hiddenSize: 5 });
    await writeEmbeddingFixture(join(scratch, 'nested'), { layout: 'hub' });
    await start({ localImportRoot: scratch });
    const res = await post({ model_id: 'local-model', source: 'local', path: join(scratch, 'flat') });
    expect(res.status).toBe(201);
    expect(res.body.model_name).toBe('local-model');
    const config = parseModelConfig(await readFile(join(repo, 'local-model', 'config.pbtxt'), 'utf8'));
    expect(config.output[0]!.dims).toEqual([-1, 5]);
    expect(await readFile(join(repo, 'local-model', 'tokenizer.json'), 'utf8')).toBe(flat.tokenizerJson);
    expect(
      (await post({ model_id: 'me/nested', source: 'local', path: join(scratch, 'nested') })).status,
    ).toBe(201);
    expect(hub.requests).toEqual([]);
  });

  it('answers 404 for a missing folder and 422 for a folder without a model', async () => {
    await start({ localImportRoot: scratch });
    const missing = await post({ model_id: 'x', source: 'local', path: join(scratch, 'nope') });
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe('model_not_found');
    await writeFile(join(scratch, 'tokenizer.json'), '{}');
    const empty = await post({ model_id: 'x', source: 'local', path: scratch });
    expect(empty.status).toBe(422);
    expect(empty.body.error?.code).toBe('no_onnx_export');
    expect(await readdir(repo)).toEqual([]);
  });
});

describe('GET /models and GET /health', () => {
  it('lists uploaded models with has_tokenizer', async () => {
    serveFixture(MODEL_ID, buildEmbeddingFixture());
    const bare = buildEmbeddingFixture();
    hub.setModel('org/no-tokenizer', { 'onnx/model.onnx': bare.onnx });
    await start();
    expect(await (await fetch(`${uploader!.url}/models`)).json()).toEqual({ models: [] });
    expect((await post({ model_id: MODEL_ID })).status).toBe(201);
    const res = await post({ model_id: 'org/no-tokenizer' });
    expect(res.status).toBe(201);
    expect(res.body.message).toContain('no tokenizer.json');
    const models = await (await fetch(`${uploader!.url}/models`)).json();
    expect(models).toEqual({
      models: [
        { name: 'org--no-tokenizer', has_tokenizer: false },
        { name: MODEL_NAME, has_tokenizer: true },
      ],
    });
  });

  it('answers health and a JSON 404 for unknown routes', async () => {
    await start();
    const health = await fetch(`${uploader!.url}/health`);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    const missing = await fetch(`${uploader!.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no such route' } });
  });
});

describe('#close', () => {
  it('aborts an upload in progress, removes its staging folder, and is safe to call twice', async () => {
    const fixture = buildEmbeddingFixture();
    serveFixture(MODEL_ID, fixture);
    hub.set(MODEL_ID, 'onnx/model.onnx', { body: fixture.onnx, gate: new Promise(() => undefined) });
    const handle = await start();
    const pending = post({ model_id: MODEL_ID });
    while (!hub.requests.some((r) => r.path.endsWith('/onnx/model.onnx')))
      await new Promise((r) => setTimeout(r, 10));
    expect((await readdir(repo)).some((n) => n.startsWith('.tmp-'))).toBe(true);
    const closing = handle.close();
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.body.error?.code).toBe('shutting_down');
    await closing;
    await handle.close();
    expect(await readdir(repo)).toEqual([]);
  });
});
