import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatModelConfig, generateDemoModels } from '@smart-routing/model-repo';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startModelServer, type ModelServerHandle } from '../../src/model-server/index.js';
import { HIDDEN, call, embedRequest, makeRepository, memoryLogger } from './helpers.js';

type Json = Record<string, unknown>;
type Outputs = { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };

let repo: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  repo = await makeRepository(2);
  // A model whose ONNX file is garbage, and one whose config disagrees with its graph.
  await mkdir(join(repo.dir, 'broken', '1'), { recursive: true });
  await writeFile(join(repo.dir, 'broken', '1', 'model.onnx'), 'not an onnx model');
  await writeFile(
    join(repo.dir, 'broken', 'config.pbtxt'),
    formatModelConfig({ name: 'broken', maxBatchSize: 0, input: [], output: [] }),
  );
  await generateDemoModels({ dir: join(repo.dir, '.tmp-mismatch'), count: 1, sizeMb: 0.1, hiddenSize: 4 });
  await mkdir(join(repo.dir, 'mismatch', '1'), { recursive: true });
  const { readFile } = await import('node:fs/promises');
  await writeFile(
    join(repo.dir, 'mismatch', '1', 'model.onnx'),
    await readFile(join(repo.dir, '.tmp-mismatch', 'label-1', '1', 'model.onnx')),
  );
  await writeFile(
    join(repo.dir, 'mismatch', 'config.pbtxt'),
    'name: "mismatch"\nmax_batch_size: 8\ninput [{ name: "token_ids" data_type: TYPE_INT64 dims: [-1] }]\n',
  );
  await mkdir(join(repo.dir, 'badconfig'));
  await writeFile(join(repo.dir, 'badconfig', 'config.pbtxt'), 'name: "badconfig"\nmax_batch_size: {\n');
  await mkdir(join(repo.dir, 'noversion'));
  await writeFile(join(repo.dir, 'noversion', 'config.pbtxt'), 'name: "noversion"');
});

afterAll(async () => {
  await repo.remove();
});

describe('startModelServer', () => {
  let server: ModelServerHandle;
  let url: string;
  let mem: ReturnType<typeof memoryLogger>;

  beforeEach(async () => {
    mem = memoryLogger();
    server = await startModelServer({ repository: repo.dir, logger: mem.logger, maxBodyBytes: 64 * 1024 });
    url = server.url;
  });

  afterEach(async () => {
    await server.close();
  });

  it('listens on a loopback port and answers health and server metadata', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.port).toBeGreaterThan(0);
    expect(await call(url, 'GET', '/v2/health/live')).toEqual({ status: 200, body: undefined });
    expect(await call(url, 'GET', '/v2/health/ready')).toEqual({ status: 200, body: undefined });
    const meta = await call(url, 'GET', '/v2');
    expect(meta.status).toBe(200);
    expect((meta.body as Json).extensions).toContain('model_repository');
  });

  it('loads nothing at start; the index lists names only, then states', async () => {
    const before = await call(url, 'POST', '/v2/repository/index', {});
    expect(before).toEqual({
      status: 200,
      body: ['badconfig', 'broken', 'label-1', 'label-2', 'mismatch', 'noversion'].map((name) => ({ name })),
    });
    expect((await call(url, 'POST', '/v2/repository/index')).status).toBe(200);
    expect((await call(url, 'POST', '/v2/repository/index', { ready: true })).body).toEqual([]);

    expect(await call(url, 'POST', '/v2/repository/models/label-1/load')).toEqual({
      status: 200,
      body: undefined,
    });
    const after = (await call(url, 'POST', '/v2/repository/index', {})).body as Json[];
    expect(after.find((e) => e.name === 'label-1')).toEqual({
      name: 'label-1',
      version: '1',
      state: 'READY',
      reason: '',
    });
    expect(after.find((e) => e.name === 'label-2')).toEqual({ name: 'label-2' });
    expect((await call(url, 'POST', '/v2/repository/index', { ready: true })).body).toEqual([
      { name: 'label-1', version: '1', state: 'READY', reason: '' },
    ]);

    await call(url, 'POST', '/v2/repository/models/label-1/unload');
    const unloaded = (await call(url, 'POST', '/v2/repository/index', {})).body as Json[];
    expect(unloaded.find((e) => e.name === 'label-1')).toEqual({
      name: 'label-1',
      version: '1',
      state: 'UNAVAILABLE',
      reason: 'unloaded',
    });
    expect(await call(url, 'POST', '/v2/repository/index', { ready: 'yes' })).toEqual({
      status: 400,
      body: { error: "'ready' must be a boolean" },
    });
  });

  it('answers metadata, config and ready for a loaded model', async () => {
    expect((await call(url, 'GET', '/v2/models/label-1/ready')).status).toBe(400);
    await call(url, 'POST', '/v2/repository/models/label-1/load', {});
    expect(await call(url, 'GET', '/v2/models/label-1/ready')).toEqual({ status: 200, body: undefined });
    expect((await call(url, 'GET', '/v2/models/label-1/versions/1/ready')).status).toBe(200);
    expect((await call(url, 'GET', '/v2/models/label-1/versions/2/ready')).status).toBe(400);
    expect(await call(url, 'GET', '/v2/models/label-1')).toEqual({
      status: 200,
      body: {
        name: 'label-1',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
          { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
        ],
        outputs: [{ name: 'last_hidden_state', datatype: 'FP32', shape: [-1, -1, HIDDEN] }],
      },
    });
    const config = await call(url, 'GET', '/v2/models/label-1/config');
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      name: 'label-1',
      platform: 'onnxruntime_onnx',
      max_batch_size: 8,
      input: [
        { name: 'input_ids', data_type: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', data_type: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', data_type: 'TYPE_FP32', dims: [-1, HIDDEN] }],
    });
  });

  it('runs inference with flat or nested data, selected outputs and an id', async () => {
    await call(url, 'POST', '/v2/repository/models/label-1/load');
    const nested = await call(
      url,
      'POST',
      '/v2/models/label-1/infer',
      embedRequest(
        [
          [101, 7, 102],
          [101, 8, 102],
        ],
        { id: 'r1' },
      ),
    );
    expect(nested.status).toBe(200);
    const body = nested.body as Outputs & Json;
    expect(body.model_name).toBe('label-1');
    expect(body.model_version).toBe('1');
    expect(body.id).toBe('r1');
    const out = body.outputs[0]!;
    expect(out).toMatchObject({ name: 'last_hidden_state', datatype: 'FP32', shape: [2, 3, HIDDEN] });
    expect(out.data).toHaveLength(2 * 3 * HIDDEN);
    // Gather: equal ids give equal rows, and [CLS] rows of both sequences match.
    expect(out.data.slice(0, HIDDEN)).toEqual(out.data.slice(3 * HIDDEN, 4 * HIDDEN));
    expect(out.data.slice(HIDDEN, 2 * HIDDEN)).not.toEqual(out.data.slice(4 * HIDDEN, 5 * HIDDEN));

    const flat = embedRequest([[101, 7, 102]]);
    (flat.inputs as Json[])[0]!.data = [101, 7, 102];
    const selected = await call(url, 'POST', '/v2/models/label-1/versions/1/infer', {
      ...flat,
      outputs: [{ name: 'last_hidden_state' }],
    });
    expect(selected.status).toBe(200);
    expect((selected.body as Outputs).outputs[0]!.data).toEqual(out.data.slice(0, 3 * HIDDEN));
  });

  it('gives every label its own weights', async () => {
    await Promise.all(
      ['label-1', 'label-2'].map((m) => call(url, 'POST', `/v2/repository/models/${m}/load`)),
    );
    const [a, b] = await Promise.all(
      ['label-1', 'label-2'].map((m) => call(url, 'POST', `/v2/models/${m}/infer`, embedRequest([[101]]))),
    );
    expect((a!.body as Outputs).outputs[0]!.data).not.toEqual((b!.body as Outputs).outputs[0]!.data);
  });

  it('coalesces concurrent loads of one model into one session load', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() => call(url, 'POST', '/v2/repository/models/label-2/load')),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(mem.records.filter((r) => r.event === 'model_loaded' && r.model === 'label-2')).toHaveLength(1);
    // A repeated load of an unchanged model is a no-op.
    await call(url, 'POST', '/v2/repository/models/label-2/load');
    expect(mem.records.filter((r) => r.event === 'model_loaded')).toHaveLength(1);
  });

  it('answers concurrent inferences on two models correctly', async () => {
    await Promise.all(
      ['label-1', 'label-2'].map((m) => call(url, 'POST', `/v2/repository/models/${m}/load`)),
    );
    const rows = (i: number): number[][] => [[101, 110 + i, 102]];
    const sequential: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      sequential.push(
        (await call(url, 'POST', `/v2/models/label-${(i % 2) + 1}/infer`, embedRequest(rows(i)))).body,
      );
    }
    const concurrent = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call(url, 'POST', `/v2/models/label-${(i % 2) + 1}/infer`, embedRequest(rows(i))),
      ),
    );
    expect(concurrent.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(concurrent.map((r) => r.body)).toEqual(sequential);
  });

  it('unload frees the model: infer then fails like Triton, and a reload serves again', async () => {
    await call(url, 'POST', '/v2/repository/models/label-1/load');
    expect((await call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[5]]))).status).toBe(200);
    expect(await call(url, 'POST', '/v2/repository/models/label-1/unload')).toEqual({
      status: 200,
      body: undefined,
    });
    expect(await call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[5]]))).toEqual({
      status: 400,
      body: { error: "Request for unknown model: 'label-1' has no available versions" },
    });
    expect((await call(url, 'GET', '/v2/models/label-1')).status).toBe(400);
    expect(mem.records.some((r) => r.event === 'model_unloaded' && r.model === 'label-1')).toBe(true);
    // Unloading again, or a model never loaded, is fine.
    expect((await call(url, 'POST', '/v2/repository/models/label-1/unload')).status).toBe(200);
    expect((await call(url, 'POST', '/v2/repository/models/label-2/unload')).status).toBe(200);
    await call(url, 'POST', '/v2/repository/models/label-1/load');
    expect((await call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[5]]))).status).toBe(200);
  });

  it('lets an infer in flight finish before its model unloads', async () => {
    await call(url, 'POST', '/v2/repository/models/label-1/load');
    const infers = Array.from({ length: 4 }, () =>
      call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[9, 9]])),
    );
    const unload = call(url, 'POST', '/v2/repository/models/label-1/unload');
    const statuses = (await Promise.all(infers)).map((r) => r.status);
    expect((await unload).status).toBe(200);
    // Each infer either ran (200) or arrived after the unload began (400), never a crash.
    for (const s of statuses) expect([200, 400]).toContain(s);
    expect((await call(url, 'GET', '/v2/models/label-1/ready')).status).toBe(400);
  });

  it('keeps answering while a model loads off the event loop, showing LOADING', async () => {
    const dir = (await makeRepository(0)).dir;
    await generateDemoModels({ dir, count: 1, sizeMb: 32, hiddenSize: 64 });
    const own = await startModelServer({ repository: dir, logger: memoryLogger().logger });
    try {
      const load = call(own.url, 'POST', '/v2/repository/models/label-1/load');
      let sawLoading = false;
      for (let i = 0; i < 200 && !sawLoading; i++) {
        const index = (await call(own.url, 'POST', '/v2/repository/index')).body as Json[];
        sawLoading = index[0]?.state === 'LOADING';
        if (sawLoading) {
          expect(index[0]).toEqual({ name: 'label-1', version: '1', state: 'LOADING', reason: '' });
          expect(await call(own.url, 'POST', '/v2/models/label-1/infer', embedRequest([[1]]))).toEqual({
            status: 400,
            body: { error: "Request for unknown model: 'label-1' has no available versions" },
          });
        }
      }
      expect(sawLoading).toBe(true);
      expect((await load).status).toBe(200);
      expect((await call(own.url, 'GET', '/v2/models/label-1/ready')).status).toBe(200);
    } finally {
      await own.close();
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reloads a model whose files changed on disk', async () => {
    const dir = (await makeRepository(1, 5)).dir;
    const own = await startModelServer({ repository: dir, logger: memoryLogger().logger });
    try {
      await call(own.url, 'POST', '/v2/repository/models/label-1/load');
      const first = (await call(own.url, 'POST', '/v2/models/label-1/infer', embedRequest([[7]])))
        .body as Outputs;
      await generateDemoModels({ dir, count: 1, sizeMb: 0.25, hiddenSize: HIDDEN, seed: 6, overwrite: true });
      await call(own.url, 'POST', '/v2/repository/models/label-1/load');
      const second = (await call(own.url, 'POST', '/v2/models/label-1/infer', embedRequest([[7]])))
        .body as Outputs;
      expect(second.outputs[0]!.data).not.toEqual(first.outputs[0]!.data);
    } finally {
      await own.close();
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('load errors', () => {
    it.each([
      ['nope', "failed to load 'nope', failed to poll from model repository"],
      // Names that would leave the repository are simply not in it.
      ['../label-1', "failed to load '../label-1', failed to poll from model repository"],
      ['.tmp-mismatch', "failed to load '.tmp-mismatch', failed to poll from model repository"],
      ['noversion', "failed to load 'noversion', no version is available"],
    ])('load %s -> 400 %s', async (model, message) => {
      expect(await call(url, 'POST', `/v2/repository/models/${encodeURIComponent(model)}/load`)).toEqual({
        status: 400,
        body: { error: message },
      });
    });

    it('reports a config that does not parse', async () => {
      const res = await call(url, 'POST', '/v2/repository/models/badconfig/load');
      expect(res.status).toBe(400);
      expect((res.body as Json).error).toMatch(
        /^failed to load 'badconfig', Poll failed for model directory 'badconfig': line 2/,
      );
    });

    it('reports a model ONNX Runtime refuses, and the index shows why', async () => {
      const res = await call(url, 'POST', '/v2/repository/models/broken/load');
      expect(res.status).toBe(400);
      expect((res.body as Json).error).toMatch(
        /^load failed for model 'broken': version 1 is at UNAVAILABLE state: /,
      );
      const index = (await call(url, 'POST', '/v2/repository/index')).body as Json[];
      const entry = index.find((e) => e.name === 'broken')!;
      expect(entry.state).toBe('UNAVAILABLE');
      expect(entry.reason).toBe((res.body as Json).error);
      expect((await call(url, 'POST', '/v2/models/broken/infer', embedRequest([[1]]))).body).toEqual({
        error: "Request for unknown model: 'broken' has no available versions",
      });
    });

    it('reports a config that does not match the graph', async () => {
      const res = await call(url, 'POST', '/v2/repository/models/mismatch/load');
      expect(res.status).toBe(400);
      expect((res.body as Json).error).toMatch(/unexpected input 'token_ids' in the config/);
    });

    it('refuses config overrides', async () => {
      const res = await call(url, 'POST', '/v2/repository/models/label-1/load', {
        parameters: { config: '{}' },
      });
      expect(res.status).toBe(400);
    });
  });

  describe('request errors', () => {
    beforeEach(async () => {
      await call(url, 'POST', '/v2/repository/models/label-1/load');
    });

    it('infer and metadata on a model never loaded', async () => {
      const unknown = { status: 400, body: { error: "Request for unknown model: 'label-2' is not found" } };
      expect(await call(url, 'POST', '/v2/models/label-2/infer', embedRequest([[1]]))).toEqual(unknown);
      expect(await call(url, 'GET', '/v2/models/label-2')).toEqual(unknown);
      expect(await call(url, 'GET', '/v2/models/label-2/config')).toEqual(unknown);
      expect(await call(url, 'GET', '/v2/models/label-1/versions/3')).toEqual({
        status: 400,
        body: { error: "Request for unknown model: 'label-1' version 3 is not found" },
      });
    });

    const ids = (shape: number[], data: unknown, datatype = 'INT64'): Json => ({
      name: 'input_ids',
      datatype,
      shape,
      data,
    });
    const mask = (shape: number[], data: unknown): Json => ({
      name: 'attention_mask',
      datatype: 'INT64',
      shape,
      data,
    });

    it.each<[string, unknown, RegExp]>([
      ['not JSON', '{"inputs": [', /^failed to parse the request JSON buffer: /],
      ['an array', [], /must be a JSON object/],
      ['no inputs', {}, /non-empty 'inputs' array/],
      ['empty inputs', { inputs: [] }, /non-empty 'inputs' array/],
      ['a bad id', { id: 5, inputs: [ids([1, 1], [1]), mask([1, 1], [1])] }, /'id' must be a string/],
      ['an input without name', { inputs: [{ datatype: 'INT64', shape: [1], data: [1] }] }, /has no 'name'/],
      [
        'a negative dim',
        { inputs: [ids([1, -1], [1]), mask([1, 1], [1])] },
        /'shape' must be an array of non-negative integers/,
      ],
      [
        'no data',
        { inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, 1] }] },
        /'data' must be an array/,
      ],
      [
        'a wrong datatype',
        { inputs: [ids([1, 1], [1.5], 'FP32'), mask([1, 1], [1])] },
        /inference input 'input_ids' data-type is 'FP32', but model 'label-1' expects 'INT64'/,
      ],
      [
        'a wrong rank',
        { inputs: [ids([2], [1, 2]), mask([2], [1, 1])] },
        /unexpected shape for input 'input_ids' for model 'label-1'. Expected \[-1,-1\], got \[2\]/,
      ],
      [
        'data not matching the shape',
        { inputs: [ids([1, 3], [1, 2]), mask([1, 3], [1, 1, 1])] },
        /unexpected number of elements for input 'input_ids' of model 'label-1': shape \[1,3\] needs 3, 'data' has 2/,
      ],
      [
        'a batch too big',
        { inputs: [ids([9, 1], Array(9).fill(1)), mask([9, 1], Array(9).fill(1))] },
        /batch-size must be <= 8/,
      ],
      [
        'mismatched batches',
        { inputs: [ids([2, 1], [1, 2]), mask([1, 1], [1])] },
        /does not match other inputs/,
      ],
      [
        'an unknown input',
        { inputs: [{ ...ids([1, 1], [1]), name: 'pixels' }] },
        /unexpected inference input 'pixels' for model 'label-1'/,
      ],
      ['a duplicate input', { inputs: [ids([1, 1], [1]), ids([1, 1], [1])] }, /given more than once/],
      [
        'a missing input',
        { inputs: [ids([1, 1], [1])] },
        /expected 2 inputs but got 1 inputs for model 'label-1'. Got input\(s\) \['input_ids'\], but missing required input\(s\) \['attention_mask'\]/,
      ],
      [
        'a non-integer id',
        { inputs: [ids([1, 2], [1, 'a']), mask([1, 2], [1, 1])] },
        /element 1 \("a"\) is not an integer/,
      ],
      ['a fractional id', { inputs: [ids([1, 1], [0.5]), mask([1, 1], [1])] }, /is not an integer/],
      [
        'an unknown output',
        { inputs: [ids([1, 1], [1]), mask([1, 1], [1])], outputs: [{ name: 'logits' }] },
        /unexpected inference output 'logits'/,
      ],
      [
        'binary_data_size without a binary body',
        { inputs: [{ ...ids([1, 1], [1]), parameters: { binary_data_size: 8 } }, mask([1, 1], [1])] },
        /has 'binary_data_size' but the message has no Inference-Header-Content-Length header/,
      ],
      [
        'an id outside the vocabulary',
        { inputs: [ids([1, 1], [10_000_000]), mask([1, 1], [1])] },
        /^inference failed for model 'label-1': /,
      ],
    ])('rejects %s with 400', async (_what, body, message) => {
      const res = await call(url, 'POST', '/v2/models/label-1/infer', body);
      expect(res.status).toBe(400);
      expect((res.body as { error: string }).error).toMatch(message);
      // The server and the model still work.
      expect((await call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[1]]))).status).toBe(200);
    });

    it('rejects an empty infer body', async () => {
      const res = await fetch(`${url}/v2/models/label-1/infer`, { method: 'POST' });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: 'failed to parse the request JSON buffer: the request body is empty',
      });
    });

    it('rejects a body over the limit with 413', async () => {
      const big = embedRequest([Array(20_000).fill(1)]);
      const res = await call(url, 'POST', '/v2/models/label-1/infer', big);
      expect(res.status).toBe(413);
      expect((res.body as Json).error).toMatch(/larger than the limit of 65536 bytes/);
      expect((await call(url, 'GET', '/v2/health/live')).status).toBe(200);
    });

    it('answers 404 for unknown paths and 405 for wrong methods', async () => {
      expect(await call(url, 'GET', '/v2/nothing')).toEqual({
        status: 404,
        body: { error: 'Not Found: GET /v2/nothing' },
      });
      expect((await call(url, 'GET', '/')).status).toBe(404);
      expect((await call(url, 'GET', '/v2/models/label-1/infer')).status).toBe(405);
      expect((await call(url, 'GET', '/v2/repository/index')).status).toBe(405);
      expect((await call(url, 'GET', '/v2/models/%E0%A4%A/ready')).status).toBe(400);
    });
  });

  it('close() is safe to call twice and stops answering', async () => {
    await call(url, 'POST', '/v2/repository/models/label-1/load');
    await Promise.all([server.close(), server.close()]);
    await server.close();
    await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
  });
});
