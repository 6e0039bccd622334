import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  decodeInferResponse,
  encodeInferRequest,
  type InferRequest,
} from '@smart-routing/kserve';
import { fillDemoWeights, generateImageModel } from '@smart-routing/model-repo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type WorkerHandle } from '../src/worker.js';
import { FakeDispatcher, memoryLogger } from './helpers/fake-dispatcher.js';

/**
 * `kserve_infer` end to end on a real worker: RunTask frames over a real WebSocket, the worker's
 * embedded model server (a child process, real ONNX inference), binary HTTP and gRPC. The fake
 * dispatcher's Welcome sets a frame limit that the wide model's answer does not fit.
 */

const SIZE = 16;
const MAX_FRAME = 64 * 1024;
const WIDE = 20_000; // classes of 'image-wide': 80 000 bytes of logits, over MAX_FRAME

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sr-worker-kserve-'));
  await generateImageModel({ dir, size: SIZE, classes: 10 });
  await generateImageModel({ dir, name: 'image-wide', size: SIZE, classes: WIDE });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function body(request: InferRequest): { bytes: Buffer; headerLength: number } {
  const m = encodeInferRequest(request);
  return { bytes: Buffer.concat(m.chunks), headerLength: m.headerLength ?? 0 };
}

function pixels(seed: number): Float32Array {
  const x = new Float32Array(3 * SIZE * SIZE);
  fillDemoWeights(x, seed);
  return x;
}

describe.each(['http', 'grpc'] as const)('a worker speaking %s to its model server', (protocol) => {
  let dispatcher: FakeDispatcher;
  let worker: WorkerHandle;
  const logs = memoryLogger();
  let seq = 0;

  beforeAll(async () => {
    dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 50, maxFrameBytes: MAX_FRAME });
    // Regression: an inherited GRPC_PORT (a dispatcher's, in a shared environment) must not give
    // the embedded child a gRPC front the worker did not ask for.
    const inherited = process.env.GRPC_PORT;
    process.env.GRPC_PORT = '0';
    worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: `w-kserve-${protocol}`,
      maxLabels: 2,
      modelRepository: dir,
      tritonProtocol: protocol,
      logger: logs.logger,
      reconnectInitialMs: 20,
    }).finally(() => {
      if (inherited === undefined) delete process.env.GRPC_PORT;
      else process.env.GRPC_PORT = inherited;
    });
    await dispatcher.waitFor((m) => m.body === 'hello');
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
  });

  function send(
    label: string,
    request: { bytes: Buffer; headerLength: number },
    taskType = 'kserve_infer',
  ): string {
    const taskId = `${protocol}-${++seq}`;
    dispatcher.send({
      runTask: {
        taskId,
        taskType,
        label,
        parametersJson: '{}',
        attempt: 1,
        inferRequest: request.bytes,
        inferHeaderLength: request.headerLength,
      },
    });
    return taskId;
  }

  it('announces kserve_infer and kserve_metadata, and infers over the configured protocol', () => {
    const hello = dispatcher.bodies('hello')[0]!.hello;
    expect(hello.taskTypes).toEqual(expect.arrayContaining(['kserve_infer', 'kserve_metadata']));
    const started = logs.records.find((r) => r.event === 'worker_started');
    expect(started?.infer_protocol).toBe(protocol);
    // The child has a gRPC front exactly when the worker asked for one.
    const child = logs.records.find((r) => r.event === 'model_server_started');
    expect(child?.grpc_address !== undefined).toBe(protocol === 'grpc');
  });

  it("answers a RunTask's infer_request with the model server's bytes in infer_response", async () => {
    const request = body({
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data: pixels(5) }],
      parameters: { binary_data_output: true },
    });
    const result = await dispatcher.result(send('image-1', request));
    expect(result.error).toBeUndefined();
    expect(result.resultJson).toBeUndefined();
    expect(result.labelMiss).toBe(true);
    // What the worker's model server answers the same body directly.
    const direct = await fetch(`${worker.modelServerUrl}/v2/models/image-1/infer`, {
      method: 'POST',
      headers: { [INFERENCE_HEADER_CONTENT_LENGTH]: String(request.headerLength) },
      body: request.bytes,
    });
    const want = Buffer.from(await direct.arrayBuffer());
    expect(result.inferHeaderLength).toBe(Number(direct.headers.get(INFERENCE_HEADER_CONTENT_LENGTH)));
    expect(Buffer.from(result.inferResponse!).equals(want)).toBe(true);
    const decoded = decodeInferResponse(result.inferResponse!, result.inferHeaderLength);
    expect(decoded.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [1, 10] });
  });

  it("turns tensors that do not fit the model into bad_parameters with the server's message", async () => {
    const request = body({
      inputs: [
        { name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE, 2], data: new Float32Array(6 * SIZE) },
      ],
    });
    const result = await dispatcher.result(send('image-1', request));
    expect(result.error?.code).toBe('bad_parameters');
    expect(result.error?.message).toMatch(/^kserve_infer: .*pixels/);
  });

  it('answers kserve_metadata with the model JSON', async () => {
    const result = await dispatcher.result(
      send('image-1', { bytes: Buffer.alloc(0), headerLength: 0 }, 'kserve_metadata'),
    );
    expect(JSON.parse(result.resultJson!)).toMatchObject({
      name: 'image-1',
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 3, SIZE, SIZE] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
    });
  });

  it('answers a result over the frame limit with an error, and the link stays up', async () => {
    const from = dispatcher.received.length;
    const request = body({
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data: pixels(6) }],
      parameters: { binary_data_output: true },
    });
    const result = await dispatcher.result(send('image-wide', request), from);
    expect(result.error?.code).toBe('inference_failed');
    expect(result.error?.message).toMatch(
      /result_too_large: the result has \d+ bytes in its frame, more than the 65536 bytes the dispatcher accepts in one frame/,
    );
    expect(result.inferResponse).toBeUndefined();
    expect(logs.records.filter((r) => r.event === 'task_completed' && r.task_id === result.taskId)).toEqual([
      expect.objectContaining({ ok: false, error_code: 'inference_failed' }),
    ]);
    // Same connection, still serving.
    const next = await dispatcher.result(
      send(
        'image-1',
        body({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data: pixels(7) }] }),
      ),
      from,
    );
    expect(next.error).toBeUndefined();
    expect(dispatcher.closeCodes).toEqual([]);
    expect(dispatcher.bodies('hello')).toHaveLength(1);
  });
});
