import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  encodeInferRequest,
  type InferRequest,
} from '@smart-routing/kserve';
import { fillDemoWeights, generateDemoModels, generateImageModel } from '@smart-routing/model-repo';
import type { RunTask } from '@smart-routing/proto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcInferTransport } from '../src/grpc-infer-transport.js';
import { ModelCache } from '../src/handlers/model-cache.js';
import { createHandlerRegistry } from '../src/handlers/registry.js';
import type { InferBody } from '../src/infer-transport.js';
import { LabelManager } from '../src/label-manager.js';
import { startModelServer, type ModelServerHandle } from '../src/model-server/index.js';
import { TaskRunner, type TaskOutcome } from '../src/task-runner.js';
import { TritonClient, TritonError, type InferResponse } from '../src/triton-client.js';

/**
 * The worker's two infer protocols against the embedded model server (in this process: HTTP with
 * Triton's binary extension, and its KServe v2 gRPC front) on generated ONNX models with real
 * inference: typed tensors over binary HTTP and over gRPC give exactly what the JSON API gives,
 * `kserve_infer` passes the body through and answers in the server's own byte layout, refusals
 * carry the server's message, `kserve_metadata` is the server's metadata.
 */

const silent = pino({ level: 'silent' });
const SIZE = 16; // image side: small, still three real convolutions
const CLASSES = 10;

let dir: string;
let server: ModelServerHandle;
let http: TritonClient;
let grpc: TritonClient;
const clients = (): [string, TritonClient][] => [
  ['http', http],
  ['grpc', grpc],
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sr-infer-protocols-'));
  await generateDemoModels({ dir, count: 1, sizeMb: 0.05, hiddenSize: 8 });
  await generateImageModel({ dir, size: SIZE, classes: CLASSES });
  server = await startModelServer({ repository: dir, logger: silent, grpcPort: 0 });
  http = new TritonClient({ url: server.url });
  grpc = new TritonClient({
    url: server.url,
    transport: new GrpcInferTransport({ address: server.grpcAddress! }),
  });
  await http.loadModel('label-1');
  await http.loadModel('image-1');
});

afterAll(async () => {
  grpc?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function pixels(seed: number, batch = 1): Float32Array {
  const x = new Float32Array(batch * 3 * SIZE * SIZE);
  fillDemoWeights(x, seed);
  return x;
}

const imageRequest = (x: Float32Array, batch = 1): InferRequest => ({
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [batch, 3, SIZE, SIZE], data: x }],
});

/** What the model server answers a body directly (status, header length, bytes). */
async function direct(
  model: string,
  body: InferBody,
): Promise<{ status: number; headerLength: number; body: Buffer }> {
  const res = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: body.headerLength > 0 ? { [INFERENCE_HEADER_CONTENT_LENGTH]: String(body.headerLength) } : {},
    body: body.body,
  });
  return {
    status: res.status,
    headerLength: Number(res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH) ?? 0),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

function bodyOf(request: InferRequest, binaryInputs = true): InferBody {
  const m = encodeInferRequest(request, { binaryInputs });
  return { body: Buffer.concat(m.chunks), headerLength: m.headerLength ?? 0 };
}

describe('TritonClient.inferTensors', () => {
  it.each(['http', 'grpc'])(
    'gives over %s exactly the outputs of the JSON API, as typed arrays',
    async (name) => {
      const client = name === 'http' ? http : grpc;
      expect(client.protocol).toBe(name);
      const x = pixels(3, 2);
      const json: InferResponse = await http.infer('image-1', {
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 3, SIZE, SIZE], data: Array.from(x) }],
      });
      const typed = await client.inferTensors('image-1', imageRequest(x, 2));
      expect(typed.model_name).toBe('image-1');
      expect(typed.outputs).toHaveLength(1);
      const out = typed.outputs[0]!;
      expect(out).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [2, CLASSES] });
      expect(out.data).toBeInstanceOf(Float32Array);
      expect(Array.from(out.data as Float32Array)).toEqual(json.outputs[0]!.data);
      // Real compute: two different images give different logits.
      expect(Array.from((out.data as Float32Array).subarray(0, CLASSES))).not.toEqual(
        Array.from((out.data as Float32Array).subarray(CLASSES)),
      );
    },
  );

  it.each(['http', 'grpc'])('sends INT64 token ids as BigInt64Array over %s, equal to JSON', async (name) => {
    const client = name === 'http' ? http : grpc;
    const ids = BigInt64Array.from([101n, 1000n, 1500n, 102n]);
    const mask = BigInt64Array.from([1n, 1n, 1n, 1n]);
    const typed = await client.inferTensors('label-1', {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 4], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 4], data: mask },
      ],
      outputs: [{ name: 'last_hidden_state' }],
    });
    const json = await http.infer('label-1', {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 4], data: [101, 1000, 1500, 102] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 4], data: [1, 1, 1, 1] },
      ],
    });
    expect(typed.outputs[0]!.shape).toEqual([1, 4, 8]);
    expect(Array.from(typed.outputs[0]!.data as Float32Array)).toEqual(json.outputs[0]!.data);
  });

  it.each(['http', 'grpc'])(
    "refuses tensors that do not fit the model over %s with the server's message",
    async (name) => {
      const client = name === 'http' ? http : grpc;
      const wrong: InferRequest = {
        inputs: [
          {
            name: 'pixels',
            datatype: 'FP32',
            shape: [1, 3, SIZE + 1, SIZE],
            data: new Float32Array(3 * (SIZE + 1) * SIZE),
          },
        ],
      };
      const answer = await direct('image-1', bodyOf(wrong));
      expect(answer.status).toBe(400);
      const serverMessage = (JSON.parse(answer.body.toString('utf8')) as { error: string }).error;
      const err = await client.inferTensors('image-1', wrong).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TritonError);
      expect((err as TritonError).status).toBe(400);
      expect((err as TritonError).serverMessage).toBe(serverMessage);
    },
  );
});

describe('TritonClient.inferBody', () => {
  const request: InferRequest = {
    ...imageRequest(pixels(9)),
    id: 'req-7',
    parameters: { binary_data_output: true },
  };

  it.each(['http', 'grpc'])(
    "answers over %s with the model server's own bytes (binary outputs)",
    async (name) => {
      const client = name === 'http' ? http : grpc;
      const body = bodyOf(request);
      const want = await direct('image-1', body);
      expect(want.status).toBe(200);
      expect(want.headerLength).toBeGreaterThan(0);
      const got = await client.inferBody('image-1', body);
      expect(got.headerLength).toBe(want.headerLength);
      expect(Buffer.from(got.body).equals(want.body)).toBe(true);
      // The tail is the logits' raw FP32 bytes.
      expect(got.body.byteLength - got.headerLength).toBe(CLASSES * 4);
    },
  );

  it.each(['http', 'grpc'])('keeps an all-JSON exchange all JSON over %s (header length 0)', async (name) => {
    const client = name === 'http' ? http : grpc;
    const body = bodyOf(
      { ...imageRequest(pixels(10)), outputs: [{ name: 'logits', parameters: { binary_data: false } }] },
      false,
    );
    expect(body.headerLength).toBe(0);
    const want = await direct('image-1', body);
    const got = await client.inferBody('image-1', body);
    expect(got.headerLength).toBe(0);
    expect(Buffer.from(got.body).toString('utf8')).toBe(want.body.toString('utf8'));
  });
});

let seq = 0;
function runnerFor(client: TritonClient): (fields: Partial<RunTask>) => Promise<TaskOutcome> {
  const labels = new LabelManager({ capacity: 4, client, logger: silent });
  const runner = new TaskRunner({
    workerId: 'w-protocols',
    slots: 4,
    labels,
    handlers: createHandlerRegistry({ withModelServer: true }),
    models: new ModelCache({ client, modelRepository: dir }),
    client,
    logger: silent,
  });
  return (fields) =>
    runner.run(
      {
        taskId: `p${++seq}`,
        taskType: 'kserve_infer',
        label: 'image-1',
        parametersJson: '{}',
        evictLabel: '',
        attempt: 1,
        deadlineUnixMs: 0,
        ...fields,
      },
      () => true,
    );
}

describe.each(clients().map(([n]) => n))('task handlers over %s', (name) => {
  const run = (fields: Partial<RunTask>) => runnerFor(name === 'http' ? http : grpc)(fields);

  it("kserve_infer: a RunTask infer_request comes back as the server's bytes in infer_response", async () => {
    const body = bodyOf({ ...imageRequest(pixels(21)), parameters: { binary_data_output: true } });
    const want = await direct('image-1', body);
    const outcome = await run({ inferRequest: body.body, inferHeaderLength: body.headerLength });
    expect(outcome.error).toBeUndefined();
    expect(outcome.resultJson).toBeUndefined();
    expect(outcome.inferHeaderLength).toBe(want.headerLength);
    expect(Buffer.from(outcome.inferResponse!).equals(want.body)).toBe(true);
  });

  it("kserve_infer: tensors that do not fit -> bad_parameters with the server's message", async () => {
    const body = bodyOf({
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE], data: new Float32Array(3 * SIZE) }],
    });
    const want = await direct('image-1', body);
    expect(want.status).toBe(400);
    const outcome = await run({ inferRequest: body.body, inferHeaderLength: body.headerLength });
    expect(outcome.error).toEqual({
      code: 'bad_parameters',
      message: `kserve_infer: ${(JSON.parse(want.body.toString('utf8')) as { error: string }).error}`,
    });
  });

  it('kserve_infer: a task without a body is refused', async () => {
    const outcome = await run({});
    expect(outcome.error?.code).toBe('bad_parameters');
    expect(outcome.error?.message).toMatch(/no infer_request/);
  });

  it("kserve_metadata: the model server's GET /v2/models/{m} JSON", async () => {
    const outcome = await run({ taskType: 'kserve_metadata' });
    const want = (await (await fetch(`${server.url}/v2/models/image-1`)).json()) as unknown;
    expect(JSON.parse(outcome.resultJson!)).toEqual(want);
  });

  it('infer: JSON in, JSON out, equal to what the JSON API answers', async () => {
    const x = Array.from(pixels(30));
    const inputs = [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data: x }];
    const outcome = await run({ taskType: 'infer', parametersJson: JSON.stringify({ inputs }) });
    expect(outcome.error).toBeUndefined();
    const json = await http.infer('image-1', { inputs });
    expect(JSON.parse(outcome.resultJson!)).toEqual({ outputs: json.outputs });
  });

  it('infer: a shape the data does not fill is bad_parameters before any model call', async () => {
    const outcome = await run({
      taskType: 'infer',
      parametersJson: JSON.stringify({
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3], data: [1, 2] }],
      }),
    });
    expect(outcome.error).toEqual({
      code: 'bad_parameters',
      message: "infer: unexpected number of elements for input 'pixels': shape [1,3] needs 3, 'data' has 2",
    });
  });

  it('embed_texts: pools the typed output to the same vectors as over HTTP', async () => {
    const texts = ['hello world', 'the weather today'];
    const here = await run({
      taskType: 'embed_texts',
      label: 'label-1',
      parametersJson: JSON.stringify({ texts }),
    });
    const viaHttp = await runnerFor(http)({
      taskType: 'embed_texts',
      label: 'label-1',
      parametersJson: JSON.stringify({ texts }),
    });
    expect(here.error).toBeUndefined();
    const { embeddings, dimensions } = JSON.parse(here.resultJson!) as {
      embeddings: number[][];
      dimensions: number;
    };
    expect(dimensions).toBe(8);
    expect(embeddings).toHaveLength(2);
    for (const e of embeddings) expect(Math.hypot(...e)).toBeCloseTo(1, 6);
    expect(here.resultJson).toBe(viaHttp.resultJson);
  });
});
