import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  decodeInferResponse,
  encodeInferRequest,
} from '@smart-routing/kserve';
import { fillDemoWeights, generateImageModel } from '@smart-routing/model-repo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startModelServer, type ModelServerHandle } from '../../src/model-server/index.js';
import { call, memoryLogger } from './helpers.js';

const SIZE = 224;
let dir: string;
let server: ModelServerHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-image-model-'));
  await generateImageModel({ dir });
  await generateImageModel({
    dir,
    name: 'image-batched',
    dynamicBatching: { preferredBatchSize: [2], maxQueueDelayMicroseconds: 20_000_000 },
  });
  server = await startModelServer({ repository: dir, logger: memoryLogger().logger });
  for (const m of ['image-1', 'image-batched']) {
    expect((await call(server.url, 'POST', `/v2/repository/models/${m}/load`)).status).toBe(200);
  }
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function image(seed: number, batch = 1): Float32Array {
  const x = new Float32Array(batch * 3 * SIZE * SIZE);
  fillDemoWeights(x, seed);
  return x;
}

async function logits(
  model: string,
  pixels: Float32Array,
  batch: number,
): Promise<{ shape: number[]; data: Float32Array }> {
  const msg = encodeInferRequest({
    inputs: [{ name: 'pixels', datatype: 'FP32', shape: [batch, 3, SIZE, SIZE], data: pixels }],
    parameters: { binary_data_output: true },
  });
  const res = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { [INFERENCE_HEADER_CONTENT_LENGTH]: String(msg.headerLength) },
    body: Buffer.concat(msg.chunks),
  });
  expect(res.status).toBe(200);
  const out = decodeInferResponse(
    Buffer.from(await res.arrayBuffer()),
    res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH) ?? undefined,
  ).outputs[0]!;
  return { shape: out.shape, data: out.data as Float32Array };
}

const close = (a: Float32Array, b: Float32Array): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-4);
};

describe('generateImageModel', () => {
  it('runs a 1x3x224x224 FP32 image through convolutions to 1000 logits that depend on the image', async () => {
    const a = await logits('image-1', image(1), 1);
    expect(a.shape).toEqual([1, 1000]);
    expect(a.data.some((v) => v !== 0)).toBe(true);
    const b = await logits('image-1', image(2), 1);
    expect(Array.from(a.data)).not.toEqual(Array.from(b.data));
    close((await logits('image-1', image(1), 1)).data, a.data);
  });

  it('gives a batch of two the rows of two single runs, directly and through the dynamic batcher', async () => {
    const one = await logits('image-1', image(1), 1);
    const two = await logits('image-1', image(2), 1);
    const pair = new Float32Array(2 * 3 * SIZE * SIZE);
    pair.set(image(1));
    pair.set(image(2), 3 * SIZE * SIZE);
    const both = await logits('image-1', pair, 2);
    expect(both.shape).toEqual([2, 1000]);
    close(both.data.subarray(0, 1000), one.data);
    close(both.data.subarray(1000), two.data);
    const [b1, b2] = await Promise.all([
      logits('image-batched', image(1), 1),
      logits('image-batched', image(2), 1),
    ]);
    close(b1!.data, one.data);
    close(b2!.data, two.data);
    const stats = await call(server.url, 'GET', '/v2/models/image-batched/stats');
    expect(
      (stats.body as { model_stats: { execution_count: number; inference_count: number }[] }).model_stats[0],
    ).toMatchObject({
      execution_count: 1,
      inference_count: 2,
    });
  });
});
