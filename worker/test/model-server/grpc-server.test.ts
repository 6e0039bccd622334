import * as grpc from '@grpc/grpc-js';
import { encodeBytesElements } from '@smart-routing/kserve';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_INFERENCE_SERVICE } from '../../src/model-server/grpc-server.js';
import { startModelServer, type ModelServerHandle } from '../../src/model-server/index.js';
import { HIDDEN, addStringsModel, call, embedRequest, makeRepository, memoryLogger } from './helpers.js';

let repo: { dir: string; remove(): Promise<void> };
let server: ModelServerHandle;
let client: grpc.Client;

type Rpc = (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- messages as proto-loader decodes them
function rpc(name: string, req: object = {}): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Rpc>)[name]!.call(client, req, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}
async function rpcError(name: string, req: object): Promise<grpc.ServiceError> {
  try {
    await rpc(name, req);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`${name} did not fail`);
}

beforeAll(async () => {
  repo = await makeRepository(1);
  await addStringsModel(repo.dir);
  server = await startModelServer({ repository: repo.dir, logger: memoryLogger().logger, grpcPort: 0 });
  client = new GRPC_INFERENCE_SERVICE(server.grpcAddress!, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await server?.close();
  await repo.remove();
});

const ids = [3n, 4n, 5n];
const raw64 = (v: bigint[]) => Buffer.from(BigInt64Array.from(v).buffer);

describe('KServe v2 gRPC front', () => {
  it('answers health, server metadata and the repository index, and loads and unloads', async () => {
    expect(server.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await rpc('ServerLive')).toEqual({ live: true });
    expect(await rpc('ServerReady')).toEqual({ ready: true });
    expect((await rpc('ServerMetadata')).extensions).toContain('binary_tensor_data');
    expect((await rpc('RepositoryIndex', {})).models).toEqual([
      { name: 'label-1', version: '', state: '', reason: '' },
      { name: 'strings', version: '', state: '', reason: '' },
    ]);
    await rpc('RepositoryModelLoad', { model_name: 'label-1' });
    await rpc('RepositoryModelLoad', { model_name: 'strings' });
    expect(await rpc('ModelReady', { name: 'label-1' })).toEqual({ ready: true });
    expect(await rpc('ModelMetadata', { name: 'label-1' })).toMatchObject({
      name: 'label-1',
      versions: ['1'],
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
        { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
      ],
    });
  });

  it('ModelInfer with raw_input_contents answers raw_output_contents equal to the HTTP JSON answer', async () => {
    const json = await call(server.url, 'POST', '/v2/models/label-1/infer', embedRequest([[3, 4, 5]]));
    const expected = Float32Array.from((json.body as { outputs: { data: number[] }[] }).outputs[0]!.data);
    const res = await rpc('ModelInfer', {
      model_name: 'label-1',
      id: 'g1',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 3] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 3] },
      ],
      raw_input_contents: [raw64(ids), raw64([1n, 1n, 1n])],
    });
    expect(res.model_name).toBe('label-1');
    expect(res.id).toBe('g1');
    expect(res.outputs).toEqual([
      { name: 'last_hidden_state', datatype: 'FP32', shape: [1, 3, HIDDEN], parameters: {}, contents: null },
    ]);
    const raw = res.raw_output_contents[0] as Buffer;
    expect(raw.equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('ModelInfer with typed contents, and BYTES both ways', async () => {
    const res = await rpc('ModelInfer', {
      model_name: 'label-1',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 1], contents: { int64_contents: [3] } },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 1], contents: { int64_contents: [1] } },
      ],
    });
    expect((res.raw_output_contents[0] as Buffer).length).toBe(HIDDEN * 4);
    const text = [Buffer.from('hello'), Buffer.from('été')];
    const echo = await rpc('ModelInfer', {
      model_name: 'strings',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2] }],
      raw_input_contents: [encodeBytesElements(text)],
    });
    expect((echo.raw_output_contents[0] as Buffer).equals(encodeBytesElements(text))).toBe(true);
    const echo2 = await rpc('ModelInfer', {
      model_name: 'strings',
      inputs: [
        { name: 'text', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('x')] } },
      ],
    });
    expect((echo2.raw_output_contents[0] as Buffer).toString('hex')).toBe('0100000078');
  });

  it("answers errors with Triton's message and the matching gRPC code", async () => {
    const unknown = await rpcError('ModelInfer', { model_name: 'nope', inputs: [] });
    expect(unknown.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unknown.details).toBe("Request for unknown model: 'nope' is not found");
    const short = await rpcError('ModelInfer', {
      model_name: 'label-1',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 3] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 3] },
      ],
      raw_input_contents: [raw64(ids), raw64([1n])],
    });
    expect(short.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(short.details).toMatch(
      /input 'attention_mask': unexpected binary_data_size 8, shape \[1,3\] of INT64 needs 24 bytes/,
    );
    const mixed = await rpcError('ModelInfer', {
      model_name: 'label-1',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 3] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 3] },
      ],
      raw_input_contents: [raw64(ids)],
    });
    expect(mixed.details).toMatch(/use it for all inputs or none/);
    const load = await rpcError('RepositoryModelLoad', { model_name: 'missing' });
    expect(load.details).toBe("failed to load 'missing', failed to poll from model repository");
    // Counted by the same statistics as HTTP.
    const stats = await call(server.url, 'GET', '/v2/models/label-1/stats');
    const m = (stats.body as { model_stats: { inference_stats: { fail: { count: number } } }[] })
      .model_stats[0]!;
    expect(m.inference_stats.fail.count).toBeGreaterThanOrEqual(2);
    await rpc('RepositoryModelUnload', { model_name: 'strings' });
    expect(await rpc('ModelReady', { name: 'strings' })).toEqual({ ready: false });
  });
});
