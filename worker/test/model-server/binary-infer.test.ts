import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  decodeInferResponse,
  encodeInferRequest,
  type InferRequest,
  type InferResponse,
} from '@smart-routing/kserve';
import { modelPaths } from '@smart-routing/model-repo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startModelServer, type ModelServerHandle } from '../../src/model-server/index.js';
import { HIDDEN, addStringsModel, call, embedRequest, makeRepository, memoryLogger } from './helpers.js';

let repo: { dir: string; remove(): Promise<void> };
let server: ModelServerHandle;
let url: string;

beforeAll(async () => {
  repo = await makeRepository(1);
  await addStringsModel(repo.dir);
  // label-1's graph again, with Triton's dynamic batcher: a batch of 4 runs at once; a smaller
  // one waits up to 20 s (far longer than any test takes to send its requests).
  const src = modelPaths(repo.dir, 'label-1');
  const batched = modelPaths(repo.dir, 'batched');
  await mkdir(join(batched.dir, '1'), { recursive: true });
  await copyFile(src.modelPath, batched.modelPath);
  const config = (await readFile(src.configPath, 'utf8')).replace('"label-1"', '"batched"');
  await writeFile(
    batched.configPath,
    `${config}\ndynamic_batching {\n  preferred_batch_size: [ 4 ]\n  max_queue_delay_microseconds: 20000000\n}\n`,
  );
  server = await startModelServer({
    repository: repo.dir,
    logger: memoryLogger().logger,
    maxBodyBytes: 1024 * 1024,
    maxResponseBytes: 64 * 1024,
  });
  url = server.url;
  for (const m of ['label-1', 'strings', 'batched']) {
    expect((await call(url, 'POST', `/v2/repository/models/${m}/load`)).status).toBe(200);
  }
});

afterAll(async () => {
  await server?.close();
  await repo.remove();
});

/** Posts a request encoded with the kserve codec and decodes the answer. */
async function infer(
  model: string,
  request: InferRequest,
  binaryInputs = true,
): Promise<{ status: number; headers: Headers; raw: Buffer; response?: InferResponse; error?: string }> {
  const msg = encodeInferRequest(request, { binaryInputs });
  const headers: Record<string, string> = {};
  if (msg.headerLength !== undefined) headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(msg.headerLength);
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers,
    body: Buffer.concat(msg.chunks),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200)
    return { status: res.status, headers: res.headers, raw, error: JSON.parse(raw.toString()).error };
  const response = decodeInferResponse(raw, res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH) ?? undefined);
  return { status: res.status, headers: res.headers, raw, response };
}

const ids = (rows: bigint[][]): InferRequest['inputs'] => {
  const shape = [rows.length, rows[0]!.length];
  return [
    { name: 'input_ids', datatype: 'INT64', shape, data: BigInt64Array.from(rows.flat()) },
    { name: 'attention_mask', datatype: 'INT64', shape, data: BigInt64Array.from(rows.flat(), () => 1n) },
  ];
};

type Dur = { count: number; ns: number };
interface Stats {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, Dur>;
  batch_stats: { batch_size: number; compute_infer: Dur }[];
}

async function stats(model: string): Promise<Stats> {
  const res = await call(url, 'GET', `/v2/models/${model}/stats`);
  expect(res.status).toBe(200);
  return (res.body as { model_stats: Stats[] }).model_stats[0]!;
}

describe('binary tensor data extension', () => {
  it('takes binary inputs and answers binary outputs with the same values as JSON', async () => {
    const json = await call(url, 'POST', '/v2/models/label-1/infer', embedRequest([[3, 4, 5]]));
    expect(json.status).toBe(200);
    const expected = (json.body as { outputs: { data: number[] }[] }).outputs[0]!.data;

    const res = await infer('label-1', {
      inputs: ids([[3n, 4n, 5n]]),
      parameters: { binary_data_output: true },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const headerLength = Number(res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH));
    const head = JSON.parse(res.raw.subarray(0, headerLength).toString());
    expect(head).toEqual({
      model_name: 'label-1',
      model_version: '1',
      outputs: [
        {
          name: 'last_hidden_state',
          datatype: 'FP32',
          shape: [1, 3, HIDDEN],
          parameters: { binary_data_size: 3 * HIDDEN * 4 },
        },
      ],
    });
    expect(res.raw.length).toBe(headerLength + 3 * HIDDEN * 4);
    expect(Array.from(res.response!.outputs[0]!.data as Float32Array)).toEqual(
      Array.from(Float32Array.from(expected)),
    );
  });

  it('answers JSON for outputs asked without binary_data, and mixes per output', async () => {
    const asJson = await infer('label-1', { inputs: ids([[3n]]), outputs: [{ name: 'last_hidden_state' }] });
    expect(asJson.headers.get(INFERENCE_HEADER_CONTENT_LENGTH)).toBeNull();
    expect(asJson.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(asJson.raw.toString()).outputs[0].data).toHaveLength(HIDDEN);
    const asBinary = await infer('label-1', {
      inputs: ids([[3n]]),
      id: 'r1',
      outputs: [{ name: 'last_hidden_state', parameters: { binary_data: true } }],
      parameters: { binary_data_output: false },
    });
    expect(asBinary.response!.id).toBe('r1');
    expect(asBinary.response!.outputs[0]!.data).toBeInstanceOf(Float32Array);
  });

  it('carries BYTES tensors both ways, binary (length-prefixed) and JSON', async () => {
    const text = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from('été')];
    const res = await infer('strings', {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: text }],
      outputs: [{ name: 'echo', parameters: { binary_data: true } }],
    });
    expect(res.status).toBe(200);
    const headerLength = Number(res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH));
    expect(res.raw.subarray(headerLength).toString('hex')).toBe(
      '0500000068656c6c6f' + '00000000' + '05000000c3a974c3a9',
    );
    expect((res.response!.outputs[0]!.data as Buffer[]).map(String)).toEqual(['hello', '', 'été']);
    const json = await call(url, 'POST', '/v2/models/strings/infer', {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['a', 'b'] }],
    });
    expect((json.body as { outputs: { data: string[] }[] }).outputs[0]!.data).toEqual(['a', 'b']);
  });

  it('refuses binary bodies that do not add up with 400, and keeps serving', async () => {
    const msg = encodeInferRequest({ inputs: ids([[3n, 4n]]) });
    const body = Buffer.concat(msg.chunks);
    const post = (b: Buffer, hl: string) =>
      fetch(`${url}/v2/models/label-1/infer`, {
        method: 'POST',
        headers: { [INFERENCE_HEADER_CONTENT_LENGTH]: hl },
        body: b,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: string } }));
    const short = await post(body.subarray(0, body.length - 3), String(msg.headerLength));
    expect(short.status).toBe(400);
    expect(short.body.error).toMatch(
      /input 'attention_mask': binary_data_size 16 runs past the end of the body/,
    );
    const wrongHeader = await post(body, String(body.length + 1));
    expect(wrongHeader.status).toBe(400);
    expect(wrongHeader.body.error).toMatch(/Inference-Header-Content-Length must be an integer/);
    expect((await infer('label-1', { inputs: ids([[3n]]) })).status).toBe(200);
  });
});

describe('limits', () => {
  it('answers a response over MAX_RESPONSE_BYTES with an error, not a stall', async () => {
    // 8 rows of 300 tokens of 8 floats = 76,800 bytes > 64 KiB.
    const rows = Array.from({ length: 8 }, () => Array.from({ length: 300 }, () => 3n));
    const res = await infer('label-1', { inputs: ids(rows), parameters: { binary_data_output: true } });
    expect(res.status).toBe(400);
    expect(res.error).toMatch(
      /^the response of model 'label-1' would be \d+ bytes, more than the server's limit of 65536 bytes \(MAX_RESPONSE_BYTES\)$/,
    );
    expect(Number(/would be (\d+)/.exec(res.error!)![1])).toBeGreaterThan(8 * 300 * HIDDEN * 4);
  });

  it("answers a body over the limit with Triton's 413 JSON error that the client can read", async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
    const res = await fetch(`${url}/v2/models/label-1/infer`, {
      method: 'POST',
      headers: { [INFERENCE_HEADER_CONTENT_LENGTH]: '2' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'request body is larger than the limit of 1048576 bytes' });
    expect((await infer('label-1', { inputs: ids([[3n]]) })).status).toBe(200);
  });
});

describe('statistics extension', () => {
  it('counts inferences, executions, failures and durations as Triton does', async () => {
    const before = await stats('label-1');
    expect(before).toMatchObject({ name: 'label-1', version: '1' });
    expect((await infer('label-1', { inputs: ids([[3n], [4n], [5n]]) })).status).toBe(200);
    expect((await infer('label-1', { inputs: [ids([[3n]])[0]!] })).status).toBe(400);
    const after = await stats('label-1');
    expect(after.inference_count - before.inference_count).toBe(3);
    expect(after.execution_count - before.execution_count).toBe(1);
    const s = after.inference_stats;
    const b = before.inference_stats;
    expect(s.success.count - b.success.count).toBe(1);
    expect(s.fail.count - b.fail.count).toBe(1);
    expect(s.compute_infer.count - b.compute_infer.count).toBe(1);
    expect(s.compute_infer.ns).toBeGreaterThan(b.compute_infer.ns);
    expect(s.success.ns - b.success.ns).toBeGreaterThanOrEqual(s.compute_infer.ns - b.compute_infer.ns);
    expect(after.last_inference).toBeGreaterThan(0);
    expect(after.batch_stats.find((x) => x.batch_size === 3)?.compute_infer.count).toBe(1);
    for (const k of ['queue', 'compute_input', 'compute_output', 'cache_hit', 'cache_miss']) {
      expect(s[k]).toEqual({ count: expect.any(Number), ns: expect.any(Number) });
    }
  });

  it('lists every ready model at /v2/models/stats; an unknown model is an error', async () => {
    const all = await call(url, 'GET', '/v2/models/stats');
    expect(all.status).toBe(200);
    expect((all.body as { model_stats: { name: string }[] }).model_stats.map((m) => m.name)).toEqual([
      'batched',
      'label-1',
      'strings',
    ]);
    expect(await call(url, 'GET', '/v2/models/nope/stats')).toEqual({
      status: 400,
      body: { error: "Request for unknown model: 'nope' is not found" },
    });
    expect((await call(url, 'GET', '/v2/models/label-1/versions/1/stats')).status).toBe(200);
  });
});

describe('dynamic batching', () => {
  it('stacks concurrent requests into one run and splits the results back', async () => {
    const rows = [
      [3n, 4n],
      [5n, 6n],
      [7n, 8n],
      [9n, 10n],
    ];
    const alone = await Promise.all(rows.map((r) => infer('label-1', { inputs: ids([r]) })));
    const before = await stats('batched');
    const together = await Promise.all(rows.map((r) => infer('batched', { inputs: ids([r]) })));
    const after = await stats('batched');
    expect(after.execution_count - before.execution_count).toBe(1);
    expect(after.inference_count - before.inference_count).toBe(4);
    expect(after.batch_stats).toEqual([expect.objectContaining({ batch_size: 4 })]);
    together.forEach((res, i) => {
      expect(res.response!.outputs[0]!.shape).toEqual([1, 2, HIDDEN]);
      expect(Array.from(res.response!.outputs[0]!.data as Float32Array)).toEqual(
        Array.from(alone[i]!.response!.outputs[0]!.data as Float32Array),
      );
    });
    expect(after.inference_stats.queue.count - before.inference_stats.queue.count).toBe(4);
  });

  it('runs one request per execution without the dynamic_batching block', async () => {
    const before = await stats('label-1');
    await Promise.all([3n, 4n, 5n, 6n].map((t) => infer('label-1', { inputs: ids([[t]]) })));
    const after = await stats('label-1');
    expect(after.execution_count - before.execution_count).toBe(4);
  });
});
