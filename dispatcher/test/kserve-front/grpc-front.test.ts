/**
 * The dispatcher's KServe v2 gRPC front on real sockets, driven by @grpc/grpc-js as a client, with
 * fake workers speaking protobuf over a real WebSocket. The worker's answer body is NVIDIA's Triton
 * server response example as tritonclient.http parses it (github.com/triton-inference-server/client,
 * recorded in kserve/test/fixtures/tritonclient-vectors.json).
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { GRPC_INFERENCE_SERVICE } from '../../src/kserve-front/grpc-front.js';
import type { DispatcherHandle } from '../../src/dispatcher.js';
import type { DispatcherOptions } from '../../src/config.js';
import type { FakeWorkerOptions } from '../fake-worker.js';
import { Harness } from '../harness.js';
import { tritonclientVector } from '../../../kserve/test/fixtures/tritonclient-vectors.js';

const { body: RESPONSE, headerLength } = tritonclientVector('docs-example-response');
const RESPONSE_HEADER = headerLength!;

const KSERVE_TYPES = ['kserve_infer', 'kserve_metadata'];

const h = new Harness();
const clients: grpc.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await h.cleanup();
});

type Call = (req: object, md?: grpc.Metadata, opts?: grpc.CallOptions) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A grpc-js client of the dispatcher's front, its RPCs as promises. */
function client(d: DispatcherHandle): Record<string, Call> {
  const c = new GRPC_INFERENCE_SERVICE(d.grpcAddress!, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  clients.push(c);
  const rpc =
    (name: string): Call =>
    (req, md = new grpc.Metadata(), opts = {}) =>
      new Promise((resolve, reject) => {
        (c as unknown as Record<string, (...args: unknown[]) => void>)[name]!.call(
          c,
          req,
          md,
          opts,
          (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)),
        );
      });
  return Object.fromEntries(
    [
      'ServerLive',
      'ServerReady',
      'ServerMetadata',
      'ModelReady',
      'ModelMetadata',
      'ModelInfer',
      'RepositoryIndex',
    ].map((n) => [n, rpc(n)]),
  );
}

async function start(options: DispatcherOptions = {}) {
  const d = await h.dispatcher(options);
  expect(d.grpcPort).toBeGreaterThan(0);
  return { d, rpc: client(d) };
}

function worker(d: DispatcherHandle, id: string, labels: string[], extra: Partial<FakeWorkerOptions> = {}) {
  return h.worker({ url: d.url, id, labels, taskTypes: KSERVE_TYPES, runMs: 1, ...extra });
}

const codeOf = (p: Promise<unknown>): Promise<number> =>
  p.then(
    () => -1,
    (err: grpc.ServiceError) => err.code,
  );

/** The JSON header and binary part of a body the worker received. */
function split(task: { inferRequest?: Uint8Array; inferHeaderLength?: number }) {
  const body = Buffer.from(task.inferRequest!);
  const hl = task.inferHeaderLength!;
  return {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    head: JSON.parse(body.subarray(0, hl).toString()) as Record<string, any>,
    rest: body.subarray(hl),
  };
}

describe('gRPC health and metadata', () => {
  it('ServerLive, ServerReady, ServerMetadata, ModelReady follow the fleet', async () => {
    const { d, rpc } = await start();
    expect(await rpc.ServerLive!({})).toEqual({ live: true });
    expect(await rpc.ServerReady!({})).toEqual({ ready: false });
    await worker(d, 'w1', ['m1']);
    expect(await rpc.ServerReady!({})).toEqual({ ready: true });
    expect(await rpc.ServerMetadata!({})).toEqual({
      name: 'smart-routing',
      version: expect.any(String),
      extensions: ['binary_tensor_data'],
    });
    expect(await rpc.ModelReady!({ name: 'm1' })).toEqual({ ready: true });
    expect(await rpc.ModelReady!({ name: 'm2' })).toEqual({ ready: false });
    expect(await codeOf(rpc.RepositoryIndex!({}))).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('ModelMetadata from a holder (kserve_metadata)', async () => {
    const { d, rpc } = await start();
    const meta = {
      name: 'm1',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 320, 320] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 10] }],
    };
    await worker(d, 'w1', ['m1'], { resultJson: () => JSON.stringify(meta) });
    expect(await rpc.ModelMetadata!({ name: 'm1' })).toEqual(meta);
  });
});

describe('gRPC ModelInfer', () => {
  it('sends raw_input_contents as the binary body and answers raw_output_contents from the worker bytes', async () => {
    const { d, rpc } = await start();
    const w = await worker(d, 'w1', ['m1'], {
      inferAnswer: () => ({ body: RESPONSE, headerLength: RESPONSE_HEADER }),
    });
    const in0 = Buffer.from(new Uint32Array([0, 1, 2, 3]).buffer);
    const in1 = Buffer.from([1, 0, 1]);
    const res = await rpc.ModelInfer!({
      model_name: 'm1',
      id: 'req-7',
      inputs: [
        { name: 'input0', datatype: 'UINT32', shape: [2, 2] },
        { name: 'input1', datatype: 'BOOL', shape: [3] },
      ],
      outputs: [{ name: 'output0' }],
      raw_input_contents: [in0, in1],
    });
    const [task] = w.received;
    expect(task!.taskType).toBe('kserve_infer');
    expect(task!.label).toBe('m1');
    const { head, rest } = split(task!);
    expect(head).toEqual({
      id: 'req-7',
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
        { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
      ],
      outputs: [{ name: 'output0', parameters: { binary_data: true } }],
      parameters: { binary_data_output: true },
    });
    expect(rest.equals(Buffer.concat([in0, in1]))).toBe(true);

    expect(res.model_name).toBe('mymodel');
    expect(res.model_version).toBe('1');
    expect(
      res.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [
        o.name,
        o.datatype,
        o.shape,
      ]),
    ).toEqual([
      ['output0', 'FP16', [3, 2]],
      ['output1', 'UINT32', [2, 2]],
      ['output2', 'BYTES', [3]],
    ]);
    const binary = RESPONSE.subarray(RESPONSE_HEADER);
    expect(Buffer.from(res.raw_output_contents[0]).equals(binary.subarray(0, 12))).toBe(true);
    // output1 came as JSON data [0,1,2,3]: converted to its raw little-endian bytes.
    expect(
      Buffer.from(res.raw_output_contents[1]).equals(Buffer.from(new Uint32Array([0, 1, 2, 3]).buffer)),
    ).toBe(true);
    expect(Buffer.from(res.raw_output_contents[2]).equals(binary.subarray(12))).toBe(true);
  });

  it('turns typed contents into raw bytes once', async () => {
    const { d, rpc } = await start();
    const w = await worker(d, 'w1', ['m1'], {
      inferAnswer: () => ({ body: RESPONSE, headerLength: RESPONSE_HEADER }),
    });
    await rpc.ModelInfer!({
      model_name: 'm1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2], contents: { fp32_contents: [1.5, -2] } }],
    });
    const { head, rest } = split(w.received[0]!);
    expect(head.inputs).toEqual([
      { name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
    ]);
    expect(rest.equals(Buffer.from(new Float32Array([1.5, -2]).buffer))).toBe(true);
  });

  it('carries a 1x3x320x320 FP32 input and output byte for byte', async () => {
    const { d, rpc } = await start();
    const data = Buffer.from(new Float32Array(3 * 320 * 320).map((_, i) => Math.cos(i)).buffer);
    await worker(d, 'w1', ['img'], {
      inferAnswer: (t) => {
        const { rest } = split(t);
        const head = Buffer.from(
          JSON.stringify({
            model_name: 'img',
            model_version: '1',
            outputs: [
              {
                name: 'y',
                datatype: 'FP32',
                shape: [1, 3, 320, 320],
                parameters: { binary_data_size: rest.length },
              },
            ],
          }),
        );
        return { body: Buffer.concat([head, rest]), headerLength: head.length };
      },
    });
    const res = await rpc.ModelInfer!({
      model_name: 'img',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 320, 320] }],
      raw_input_contents: [data],
    });
    expect(res.outputs[0].shape).toEqual([1, 3, 320, 320]);
    expect(Buffer.from(res.raw_output_contents[0]).equals(data)).toBe(true);
  });
});

describe('gRPC errors as status codes', () => {
  const input = {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }],
    raw_input_contents: [Buffer.alloc(4)],
  };

  it('NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE', async () => {
    const { d, rpc } = await start({ maxAttempts: 1 });
    await worker(d, 'w1', ['bad', 'down'], {
      missingLabels: ['nope'],
      inferAnswer: (t) =>
        t.label === 'bad'
          ? { error: { code: 'bad_parameters', message: "unexpected datatype for input 'x'" } }
          : { error: { code: 'model_server_unavailable', message: 'connection refused' } },
    });
    expect(await codeOf(rpc.ModelInfer!({ model_name: 'nope', ...input }))).toBe(grpc.status.NOT_FOUND);
    const invalid = await rpc.ModelInfer!({ model_name: 'bad', ...input }).catch((e: grpc.ServiceError) => e);
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.details).toContain("unexpected datatype for input 'x'");
    // Raw contents for one input of two: refused before routing.
    const mismatch = rpc.ModelInfer!({
      model_name: 'bad',
      inputs: [...input.inputs, { name: 'z', datatype: 'FP32', shape: [1] }],
      raw_input_contents: input.raw_input_contents,
    });
    expect(await codeOf(mismatch)).toBe(grpc.status.INVALID_ARGUMENT);
    const down = await rpc.ModelInfer!({ model_name: 'down', ...input }).catch((e: grpc.ServiceError) => e);
    expect(down.code).toBe(grpc.status.UNAVAILABLE);
    expect(down.metadata.get('retry-after')[0]).toMatch(/^\d+$/);
  });

  it('DEADLINE_EXCEEDED when the task times out', async () => {
    const { d, rpc } = await start({ taskTimeoutMs: 100 });
    await worker(d, 'w1', ['m1'], { answer: false });
    expect(await codeOf(rpc.ModelInfer!({ model_name: 'm1', ...input }))).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('RESOURCE_EXHAUSTED for a message over MAX_INFER_BODY_BYTES', async () => {
    const { d, rpc } = await start({ maxInferBodyBytes: 4096 });
    const w = await worker(d, 'w1', ['m1']);
    const big = rpc.ModelInfer!({
      model_name: 'm1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2048] }],
      raw_input_contents: [Buffer.alloc(8192)],
    });
    expect(await codeOf(big)).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(w.received).toHaveLength(0);
  });

  it('UNAUTHENTICATED without an API key; ServerLive stays open', async () => {
    const { d, rpc } = await start({ apiKeys: ['k1'] });
    await worker(d, 'w1', ['m1'], { inferAnswer: () => ({ body: RESPONSE, headerLength: RESPONSE_HEADER }) });
    expect(await codeOf(rpc.ModelInfer!({ model_name: 'm1', ...input }))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(rpc.ModelMetadata!({ name: 'm1' }))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await rpc.ServerLive!({})).toEqual({ live: true });
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer k1');
    const res = await rpc.ModelInfer!({ model_name: 'm1', ...input }, md);
    expect(res.model_name).toBe('mymodel');
  });
});

describe('gRPC cancellation', () => {
  it("a client's deadline abandons the task (counted as abandoned)", async () => {
    const { d, rpc } = await start();
    const w = await worker(d, 'w1', ['m1'], { answer: false });
    const call = rpc.ModelInfer!(
      {
        model_name: 'm1',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }],
        raw_input_contents: [Buffer.alloc(4)],
      },
      new grpc.Metadata(),
      // Long enough for the task to reach the worker on a loaded machine; the worker never answers.
      { deadline: Date.now() + 3000 },
    );
    const code = codeOf(call);
    await w.waitForTasks(1);
    expect(await code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(w.received).toHaveLength(1);
    await eventually(async () =>
      /smart_routing_tasks_total\{outcome="abandoned"\} 1/.test(await metricsText(d)),
    );
  });
});

async function metricsText(d: DispatcherHandle): Promise<string> {
  return (await fetch(`${d.url}/metrics`)).text();
}

/** Waits for an async condition (the server side of a cancelled call runs after the client's). */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  // An overall limit, not a count of polls: each poll is slower on a loaded machine.
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('gRPC front shutdown', () => {
  it('answers ServerReady false while draining and stops listening on close', async () => {
    const { d, rpc } = await start({ shutdownGraceMs: 5000 });
    const w = await worker(d, 'w1', ['m1'], {
      runMs: 200,
      inferAnswer: () => ({ body: RESPONSE, headerLength: RESPONSE_HEADER }),
    });
    const running = rpc.ModelInfer!({
      model_name: 'm1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }],
      raw_input_contents: [Buffer.alloc(4)],
    });
    await w.waitForTasks(1);
    const drained = d.drain();
    expect(await rpc.ServerReady!({})).toEqual({ ready: false });
    // The call in flight finishes within the grace.
    expect((await running).model_name).toBe('mymodel');
    await drained;
    expect(await codeOf(rpc.ServerLive!({}, new grpc.Metadata(), { deadline: Date.now() + 2000 }))).toBe(
      grpc.status.UNAVAILABLE,
    );
  });
});

describe('GRPC_PORT', () => {
  it('grpcPort false turns the front off', async () => {
    const d = await h.dispatcher({ grpcPort: false });
    expect(d.grpcAddress).toBeUndefined();
    expect(d.grpcPort).toBeUndefined();
  });
});
