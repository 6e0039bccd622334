/**
 * Issue 4 end to end: a model goes from a local Hugging Face-style hub through the uploader into the
 * repository (requested through the dispatcher), a worker loads it in its embedded model server,
 * and `embed_texts` / `infer` answer with values the test computes on its own from the fixture's
 * embedding table:
 *
 *   fake hub ──> uploader ──> <repo>/acme--tiny-embedder ──> worker's model server (ONNX Runtime)
 *                   ^                                               ^
 *   test ──POST /upload-model──> dispatcher ──POST /run-task──> worker (WebSocket)
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import {
  OnnxAttributeType,
  OnnxDataType,
  encodeOnnxModel,
  floatTensor,
  int64Tensor,
  parseModelConfig,
} from '@smart-routing/model-repo';
import { startUploader, type UploaderHandle } from '@smart-routing/uploader';
import { startWorker, type WorkerHandle } from '@smart-routing/worker';
import {
  buildEmbeddingFixture,
  FIXTURE_SPECIAL_IDS,
  type EmbeddingFixture,
} from '../../uploader/test/fixtures.js';
import { startFakeHub, type FakeHub } from '../../uploader/test/hub-server.js';

const silent = pino({ level: 'silent' });

const MODEL_ID = 'acme/tiny-embedder';
const MODEL_NAME = 'acme--tiny-embedder';
/** Same table and tokenizer, but its output ignores the mask (pads get the [PAD] row, as in BERT). */
const UNMASKED_ID = 'acme/unmasked-embedder';
const UNMASKED_NAME = 'acme--unmasked-embedder';
const HIDDEN = 8;

/**
 * The test's own tokenizer: each whitespace-separated word of the chosen texts, as written, to the
 * WordPiece strings BERT's uncased tokenizer gives it (lowercase, accents stripped, punctuation split,
 * greedy longest-match subwords). Strings go to ids through the fixture's vocabulary.
 */
const WORD_PIECES: Record<string, string[]> = {
  Hello: ['hello'],
  world: ['world'],
  Embedding: ['embed', '##ding'],
  tokenizers: ['token', '##izer', '##s'],
  'H\u00e9llo,': ['hello', ','],
  'W\u00f6rld!': ['world', '!'],
  'Caf\u00e9': ['c', '##a', '##f', '##e'],
  'Cafe\u0301': ['c', '##a', '##f', '##e'],
  The: ['the'],
  the: ['the'],
  quick: ['quick'],
  brown: ['brown'],
  fox: ['fox'],
  jumps: ['jumps'],
  over: ['over'],
  lazy: ['lazy'],
  'dog.': ['dog', '.'],
  Uploaded: ['upload', '##ed'],
  '42': ['[UNK]'],
  'models?': ['model', '##s', '?'],
  "cat's": ['cat', "'", 's'],
  mat: ['mat'],
};

const SHORT = 'Hello world';
const SUBWORDS = 'Embedding tokenizers';
const ACCENTS = 'H\u00e9llo, W\u00f6rld! Caf\u00e9 Cafe\u0301';
const LONG = 'The quick brown fox jumps over the lazy dog.';
const UNKNOWN = 'Uploaded 42 models?';
const APOSTROPHE = "The cat's mat";

let dir: string;
let repo: string;
let fixture: EmbeddingFixture;
let hub: FakeHub;
let uploader: UploaderHandle;
let dispatcher: DispatcherHandle;
let worker: WorkerHandle;
let taskCounter = 0;

interface ApiError {
  error?: { code: string; message: string };
}

interface TaskReply<R> extends ApiError {
  status: string;
  worker_id: string;
  label: string;
  label_miss: boolean;
  result: R;
}

interface EmbedResult {
  embeddings: number[][];
  dimensions: number;
}

interface InferOutput {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

/** Ids of `text` with [CLS]/[SEP], by the word table above. */
function tokenIds(text: string): number[] {
  const ids: number[] = [FIXTURE_SPECIAL_IDS['[CLS]']];
  for (const word of text.split(/\s+/)) {
    const pieces = WORD_PIECES[word];
    if (!pieces) throw new Error(`the test's word table lacks '${word}'`);
    for (const piece of pieces) {
      const id = fixture.vocab.get(piece);
      if (id === undefined) throw new Error(`the fixture vocabulary lacks '${piece}'`);
      ids.push(id);
    }
  }
  ids.push(FIXTURE_SPECIAL_IDS['[SEP]']);
  return ids;
}

/** Mean of the table rows of `ids`, L2-normalised. */
function meanNormalised(ids: number[]): number[] {
  const sum = new Array<number>(HIDDEN).fill(0);
  for (const id of ids) {
    for (let k = 0; k < HIDDEN; k++) sum[k]! += fixture.embeddings[id * HIDDEN + k]!;
  }
  const mean = sum.map((v) => v / ids.length);
  const norm = Math.sqrt(mean.reduce((s, v) => s + v * v, 0));
  return mean.map((v) => v / norm);
}

function expectVectorClose(actual: number[] | undefined, expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((v, k) => expect(actual![k]).toBeCloseTo(v, 5));
}

async function post<T>(
  base: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

function upload(modelId: string, extra: Record<string, unknown> = {}) {
  return post<{ status?: string; model_name?: string; message?: string } & ApiError>(
    dispatcher.url,
    '/upload-model',
    { model_id: modelId, max_batch_size: 4, ...extra },
  );
}

function runTask<R>(taskType: string, label: string, parameters: unknown) {
  return post<TaskReply<R>>(dispatcher.url, '/run-task', {
    task_id: `upload-e2e-${++taskCounter}`,
    task_type: taskType,
    label,
    parameters_json: JSON.stringify(parameters),
  });
}

const labels = async (): Promise<Record<string, string[]>> =>
  (await (await fetch(`${dispatcher.url}/labels`)).json()) as Record<string, string[]>;

/** Every entry under the repository (hidden staging folders included): path -> sha256 or 'dir'. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        out[relative(root, path)] = 'dir';
        await walk(path);
      } else {
        out[relative(root, path)] = createHash('sha256')
          .update(await readFile(path))
          .digest('hex');
      }
    }
  };
  await walk(root);
  return out;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not in time`);
    await sleep(25);
  }
}

/** The fixture's graph without the mask multiplication: last_hidden_state = embeddings[input_ids]. */
function unmaskedModel(f: EmbeddingFixture): Uint8Array {
  return encodeOnnxModel({
    name: 'unmasked-embedding',
    node: [
      { opType: 'Gather', input: ['embeddings', 'input_ids'], output: ['gathered'], name: 'gather' },
      // attention_mask stays a real input (as in BERT) but only adds zeros.
      {
        opType: 'Cast',
        input: ['attention_mask'],
        output: ['mask_float'],
        name: 'cast',
        attribute: [{ name: 'to', type: OnnxAttributeType.INT, i: OnnxDataType.FLOAT }],
      },
      {
        opType: 'Unsqueeze',
        input: ['mask_float', 'unsqueeze_axes'],
        output: ['mask_3d'],
        name: 'unsqueeze',
      },
      { opType: 'Mul', input: ['mask_3d', 'zero'], output: ['zeros'], name: 'zero' },
      { opType: 'Add', input: ['gathered', 'zeros'], output: ['last_hidden_state'], name: 'add' },
    ],
    initializer: [
      floatTensor('embeddings', [f.vocab.size, f.hiddenSize], f.embeddings),
      int64Tensor('unsqueeze_axes', [1], BigInt64Array.from([-1n])),
      floatTensor('zero', [1], Float32Array.from([0])),
    ],
    input: [
      { name: 'input_ids', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
      { name: 'attention_mask', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
    ],
    output: [
      {
        name: 'last_hidden_state',
        elemType: OnnxDataType.FLOAT,
        dims: ['batch_size', 'sequence_length', f.hiddenSize],
      },
    ],
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-upload-e2e-'));
  repo = join(dir, 'models');
  await mkdir(repo);
  fixture = buildEmbeddingFixture({ hiddenSize: HIDDEN, seed: 7 });
  const tokenizerFiles = {
    'tokenizer.json': fixture.tokenizerJson,
    'tokenizer_config.json': fixture.tokenizerConfigJson,
  };

  hub = await startFakeHub();
  hub.setModel(MODEL_ID, { 'onnx/model.onnx': fixture.onnx, ...tokenizerFiles });
  hub.setModel(UNMASKED_ID, { 'onnx/model.onnx': unmaskedModel(fixture), ...tokenizerFiles });
  // A real repository without an ONNX export (PyTorch weights only).
  hub.setModel('acme/pytorch-only', { 'config.json': '{}', ...tokenizerFiles });
  // The connection drops 100 bytes into the model file.
  hub.setModel('acme/cut-off', tokenizerFiles);
  hub.set('acme/cut-off', 'onnx/model.onnx', { body: fixture.onnx, destroyAfter: 100 });

  uploader = await startUploader({
    repository: repo,
    port: 0,
    host: '127.0.0.1',
    hfEndpoint: hub.url,
    logger: silent,
  });
  dispatcher = await startDispatcher({
    port: 0,
    host: '127.0.0.1',
    uploaderUrl: uploader.url,
    modelRepository: repo,
    logger: silent,
  });
  worker = await startWorker({
    dispatcherUrl: dispatcher.url,
    workerId: 'upload-e2e-w1',
    maxLabels: 2,
    modelRepository: repo,
    logger: silent,
  });
  await until(
    'worker registered',
    async () => ((await (await fetch(`${dispatcher.url}/workers`)).json()) as unknown[]).length === 1,
  );
});

afterAll(async () => {
  await worker?.close();
  await dispatcher?.close();
  await uploader?.close();
  await hub?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('upload through the dispatcher, then embed_texts on the worker', () => {
  it('uploads the hub model into the repository in Triton layout and lists it under /labels', async () => {
    const res = await upload(MODEL_ID);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'uploaded', model_name: MODEL_NAME });
    expect(res.body.message).toEqual(expect.any(String));
    expect(hub.requests.some((r) => r.path === `/${MODEL_ID}/resolve/main/onnx/model.onnx`)).toBe(true);

    const modelDir = join(repo, MODEL_NAME);
    expect(Buffer.compare(await readFile(join(modelDir, '1', 'model.onnx')), Buffer.from(fixture.onnx))).toBe(
      0,
    );
    expect(await readFile(join(modelDir, 'tokenizer.json'), 'utf8')).toBe(fixture.tokenizerJson);
    const config = parseModelConfig(await readFile(join(modelDir, 'config.pbtxt'), 'utf8'));
    expect(config.maxBatchSize).toBe(4);
    expect(config.input.map((t) => [t.name, t.dataType, t.dims])).toEqual([
      ['input_ids', 'TYPE_INT64', [-1]],
      ['attention_mask', 'TYPE_INT64', [-1]],
    ]);
    expect(config.output.map((t) => [t.name, t.dataType, t.dims])).toEqual([
      ['last_hidden_state', 'TYPE_FP32', [-1, HIDDEN]],
    ]);
    // No staging leftovers beside it.
    expect(await readdir(repo)).toEqual([MODEL_NAME]);

    expect(await labels()).toEqual({ [MODEL_NAME]: [] });
  });

  it('embeds texts with values equal to tokens -> table rows -> masked mean -> L2 normalise', async () => {
    // One inference batch (max_batch_size 4) of 4, 8, 13 and 7 tokens: three rows carry padding.
    const texts = [SHORT, ACCENTS, LONG, SUBWORDS];
    const res = await runTask<EmbedResult>('embed_texts', MODEL_NAME, { texts });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      status: 'completed',
      worker_id: 'upload-e2e-w1',
      label: MODEL_NAME,
      label_miss: true,
    });
    expect(res.body.result.dimensions).toBe(HIDDEN);
    expect(res.body.result.embeddings).toHaveLength(texts.length);
    texts.forEach((text, i) =>
      expectVectorClose(res.body.result.embeddings[i], meanNormalised(tokenIds(text))),
    );

    expect((await labels())[MODEL_NAME]).toEqual(['upload-e2e-w1']);

    // Each text alone (no padding at all) gives the same vector as inside the padded batch.
    const alone = await runTask<EmbedResult>('embed_texts', MODEL_NAME, { texts: [SHORT] });
    expect(alone.status).toBe(200);
    expect(alone.body.label_miss).toBe(false);
    expectVectorClose(alone.body.result.embeddings[0], res.body.result.embeddings[0]!);
  });

  it('keeps order and values across several inference batches, [UNK] included', async () => {
    const texts = [UNKNOWN, SHORT, APOSTROPHE, LONG, ACCENTS, SUBWORDS];
    const res = await runTask<EmbedResult>('embed_texts', MODEL_NAME, { texts });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result.embeddings).toHaveLength(texts.length);
    texts.forEach((text, i) =>
      expectVectorClose(res.body.result.embeddings[i], meanNormalised(tokenIds(text))),
    );
  });

  it('leaves padded positions out of the mean when the model outputs non-zero rows there', async () => {
    const up = await upload(UNMASKED_ID);
    expect(up.status).toBe(201);
    expect(up.body.model_name).toBe(UNMASKED_NAME);

    // The model really puts the [PAD] row at masked positions, so a leak would show.
    const pad = Array.from(fixture.row(FIXTURE_SPECIAL_IDS['[PAD]']));
    const probe = await runTask<{ outputs: InferOutput[] }>('infer', UNMASKED_NAME, {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 2], data: [FIXTURE_SPECIAL_IDS['[CLS]'], 0] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 2], data: [1, 0] },
      ],
    });
    expect(probe.status, JSON.stringify(probe.body)).toBe(200);
    expectVectorClose(probe.body.result.outputs[0]!.data.slice(HIDDEN), pad);

    const res = await runTask<EmbedResult>('embed_texts', UNMASKED_NAME, { texts: [SHORT, LONG] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const ids = tokenIds(SHORT);
    const clean = meanNormalised(ids);
    const padded = [...ids, ...new Array<number>(tokenIds(LONG).length - ids.length).fill(0)];
    const leaky = meanNormalised(padded);
    expect(Math.max(...clean.map((v, k) => Math.abs(v - leaky[k]!)))).toBeGreaterThan(0.01);
    expectVectorClose(res.body.result.embeddings[0], clean);
    expectVectorClose(res.body.result.embeddings[1], meanNormalised(tokenIds(LONG)));
  });

  it('runs infer on the uploaded model: last_hidden_state rows are the table rows, zero where masked', async () => {
    const v = (t: string): number => fixture.vocab.get(t)!;
    const { '[CLS]': cls, '[SEP]': sep, '[PAD]': pad } = FIXTURE_SPECIAL_IDS;
    const ids = [
      [cls, v('hello'), v('world'), sep],
      [cls, v('cat'), sep, pad],
    ];
    const mask = [
      [1, 1, 1, 1],
      [1, 1, 1, 0],
    ];
    const res = await runTask<{ outputs: InferOutput[] }>('infer', MODEL_NAME, {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [2, 4], data: ids.flat() },
        { name: 'attention_mask', datatype: 'INT64', shape: [2, 4], data: mask.flat() },
      ],
      outputs: [{ name: 'last_hidden_state' }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [out] = res.body.result.outputs;
    expect(out).toMatchObject({ name: 'last_hidden_state', datatype: 'FP32', shape: [2, 4, HIDDEN] });
    const expected = ids.flatMap((row, b) =>
      row.flatMap((id, s) => Array.from(fixture.row(id), (x) => x * mask[b]![s]!)),
    );
    expectVectorClose(out!.data, expected);
  });
});

describe('errors through the dispatcher leave the repository unchanged', () => {
  const cases: [string, string, Record<string, unknown>, number, string][] = [
    ['an existing model without overwrite', MODEL_ID, { overwrite: false }, 409, 'model_exists'],
    ['an unknown model', 'acme/no-such-model', {}, 404, 'model_not_found'],
    ['a model without an ONNX export', 'acme/pytorch-only', {}, 422, 'no_onnx_export'],
    ['a download cut off mid-file', 'acme/cut-off', {}, 502, 'hub_error'],
    ['a bad model id', 'acme/../../etc', {}, 400, 'invalid_model_id'],
  ];

  it.each(cases)('%s', async (_what, modelId, extra, status, code) => {
    const before = await snapshot(repo);
    expect(before[join(MODEL_NAME, 'config.pbtxt')]).toBeDefined();
    const res = await upload(modelId, extra);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.error?.code).toBe(code);
    expect(res.body.error?.message).toEqual(expect.any(String));
    expect(await snapshot(repo)).toEqual(before);
  });

  it('a hub answering 500', async () => {
    const before = await snapshot(repo);
    hub.failAll = 500;
    try {
      const res = await upload('acme/another-model');
      expect(res.status, JSON.stringify(res.body)).toBe(502);
      expect(res.body.error?.code).toBe('hub_error');
    } finally {
      hub.failAll = undefined;
    }
    expect(await snapshot(repo)).toEqual(before);
  });

  it('a dispatcher without an uploader: 503 uploader_not_configured', async () => {
    const bare = await startDispatcher({ port: 0, host: '127.0.0.1', modelRepository: repo, logger: silent });
    try {
      const res = await post<ApiError>(bare.url, '/upload-model', { model_id: MODEL_ID });
      expect(res.status).toBe(503);
      expect(res.body.error?.code).toBe('uploader_not_configured');
    } finally {
      await bare.close();
    }
  });

  it('a run-task on a label the repository lacks: 404 label_not_found', async () => {
    const res = await runTask<EmbedResult>('embed_texts', 'acme--not-uploaded', { texts: [SHORT] });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('label_not_found');
  });
});
