/**
 * The dispatcher as a KServe v2 front, end to end: NVIDIA's Triton Python HTTP client
 * (tritonclient.http from github.com/triton-inference-server/client, vendored unmodified in
 * test/third_party/tritonclient) and a gRPC client on the public KServe v2 service definition talk
 * to the dispatcher, which routes each call as a `kserve_infer` task to a real worker whose embedded
 * model server runs real ONNX inference. The answers must be the model server's own, byte for byte.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DispatcherHandle } from '@smart-routing/dispatcher';
import { KSERVE_GRPC_PROTO_PATH, encodeInferRequest } from '@smart-routing/kserve';
import type { WorkerHandle } from '@smart-routing/worker';
import { HIDDEN } from '../../worker/test/model-server/helpers.js';
import { startKserveStack, type KserveStack } from './kserve-stack.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const python = process.env.TRITON_PYTHON ?? '/usr/bin/python3';
const env = { ...process.env, PYTHONPATH: join(root, 'test/third_party/tritonclient') };
const battery = join(root, 'test/conformance/tritonclient-battery.py');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the client's JSON

async function clientMissing(): Promise<string | undefined> {
  try {
    await exec(python, ['-c', 'import numpy, rapidjson, geventhttpclient, tritonclient.http'], { env });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
  }
}
const missing = await clientMissing();
if (missing) process.stderr.write(`kserve-front.test.ts: tritonclient part skipped (${missing})\n`);

let stack: KserveStack;
let dispatcher: DispatcherHandle;
let worker: WorkerHandle;

/** The embedding model's request for two rows of four token ids, in Triton's binary layout. */
function binaryEmbedRequest(): { body: Uint8Array; headerLength: number } {
  const ids = BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  const mask = new BigInt64Array(8).fill(1n);
  const encoded = encodeInferRequest({
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [2, 4], data: ids },
      { name: 'attention_mask', datatype: 'INT64', shape: [2, 4], data: mask },
    ],
    parameters: { binary_data_output: true },
  });
  return { body: Buffer.concat(encoded.chunks), headerLength: encoded.headerLength ?? 0 };
}

async function postInfer(base: string, model: string, req: { body: Uint8Array; headerLength: number }) {
  const res = await fetch(`${base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(req.headerLength),
    },
    body: req.body,
  });
  return {
    status: res.status,
    headerLength: res.headers.get('inference-header-content-length'),
    bytes: new Uint8Array(await res.arrayBuffer()),
  };
}

beforeAll(async () => {
  stack = await startKserveStack('front-e2e');
  ({ dispatcher, worker } = stack);
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

describe('the dispatcher as a KServe v2 front over a real worker', () => {
  it("passes the model server's binary answer through byte for byte", async () => {
    const req = binaryEmbedRequest();
    const viaFront = await postInfer(dispatcher.url, 'label-1', req);
    expect(viaFront.status, new TextDecoder().decode(viaFront.bytes)).toBe(200);
    const direct = await postInfer(worker.modelServerUrl!, 'label-1', req);
    expect(direct.status).toBe(200);
    expect(viaFront.headerLength).toBe(direct.headerLength);
    expect(Buffer.from(viaFront.bytes).equals(Buffer.from(direct.bytes))).toBe(true);
    // The output really is binary: 2x4xHIDDEN FP32 after the JSON header.
    expect(viaFront.bytes.length - Number(viaFront.headerLength)).toBe(2 * 4 * HIDDEN * 4);
  });

  it('answers gRPC ModelInfer with raw contents equal to the HTTP answer', async () => {
    const definition = protoLoader.loadSync(KSERVE_GRPC_PROTO_PATH, { keepCase: true, longs: Number });
    const Service = (
      grpc.loadPackageDefinition(definition) as unknown as {
        inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
      }
    ).inference.GRPCInferenceService;
    const client = new Service(dispatcher.grpcAddress!, grpc.credentials.createInsecure()) as unknown as {
      ModelInfer(
        req: unknown,
        cb: (err: grpc.ServiceError | null, res?: { raw_output_contents: Buffer[]; outputs: Json[] }) => void,
      ): void;
      close(): void;
    };
    const ids = Buffer.from(BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]).buffer);
    const mask = Buffer.from(new BigInt64Array(8).fill(1n).buffer);
    const res = await new Promise<{ raw_output_contents: Buffer[]; outputs: Json[] }>((resolve, reject) =>
      client.ModelInfer(
        {
          model_name: 'label-1',
          inputs: [
            { name: 'input_ids', datatype: 'INT64', shape: [2, 4] },
            { name: 'attention_mask', datatype: 'INT64', shape: [2, 4] },
          ],
          raw_input_contents: [ids, mask],
        },
        (err, r) => (err ? reject(err) : resolve(r!)),
      ),
    );
    client.close();
    expect(res.outputs[0]).toMatchObject({ name: 'last_hidden_state', datatype: 'FP32' });
    const direct = await postInfer(worker.modelServerUrl!, 'label-1', binaryEmbedRequest());
    const tail = direct.bytes.subarray(Number(direct.headerLength));
    expect(Buffer.from(res.raw_output_contents[0]!).equals(Buffer.from(tail))).toBe(true);
  });

  describe.skipIf(missing !== undefined)("NVIDIA's Triton Python client", () => {
    let seen: Json;
    beforeAll(async () => {
      const { stdout } = await exec(
        python,
        [battery, '--url', dispatcher.url, '--model', 'label-2', '--bytes-model', 'strings'],
        { env, maxBuffer: 16 * 1024 * 1024 },
      );
      seen = JSON.parse(stdout) as Json;
    }, 60_000);

    it('sees one live, ready server that holds every model', () => {
      expect(seen.live).toBe(true);
      expect(seen.ready).toBe(true);
      expect(seen.server_metadata.extensions).toContain('binary_tensor_data');
      expect(seen.model_ready).toBe(true);
      expect(seen.metadata.inputs).toEqual([
        { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
        { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
      ]);
    });

    it("gets the same numbers from the client's default binary request as from JSON", () => {
      const binary = seen.binary.outputs.last_hidden_state;
      expect(binary.shape).toEqual([2, 4, HIDDEN]);
      expect(seen.binary.response.outputs[0].parameters).toEqual({ binary_data_size: 2 * 4 * HIDDEN * 4 });
      expect(seen.json.response.id).toBe('json-1');
      expect(seen.json.outputs.last_hidden_state.data).toEqual(binary.data);
    });

    it('round-trips BYTES tensors through the fleet', () => {
      expect(seen.bytes.binary).toEqual(['hello', '', 'été']);
      expect(seen.bytes.json).toEqual(['hello', '', 'été']);
    });

    it("reads the fleet's refusals as Triton errors", () => {
      expect(seen.unknown_model.error.status).toBe('404');
      expect(seen.unknown_model.error.message).toMatch(/no-such-model/);
      expect(seen.wrong_datatype.error.status).toBe('400');
      expect(seen.wrong_datatype.error.message).toMatch(/expects 'INT64'/);
      expect(seen.missing_input.error.message).toMatch(/attention_mask/);
    });
  });
});
