import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateDemoModels } from '@smart-routing/model-repo';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimeoutError } from '../src/errors.js';
import { startModelServer, type ModelServerHandle } from '../src/model-server/index.js';
import { TritonClient, TritonError } from '../src/triton-client.js';

let dir: string;
let server: ModelServerHandle;
let client: TritonClient;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sr-triton-client-'));
  await generateDemoModels({ dir, count: 2, sizeMb: 0.05, hiddenSize: 8 });
  server = await startModelServer({ repository: dir, logger: pino({ level: 'silent' }) });
  client = new TritonClient({ url: `${server.url}/` });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('TritonClient', () => {
  it('reports health and the repository index', async () => {
    expect(await client.isLive()).toBe(true);
    expect(await client.isReady()).toBe(true);
    expect((await client.repositoryIndex()).map((m) => m.name)).toEqual(['label-1', 'label-2']);
  });

  it('loads, inspects, runs and unloads a model', async () => {
    await client.loadModel('label-1');
    expect(await client.isModelReady('label-1')).toBe(true);
    expect(await client.isModelReady('label-2')).toBe(false);
    expect(await client.repositoryIndex({ ready: true })).toEqual([
      expect.objectContaining({ name: 'label-1', state: 'READY' }),
    ]);
    const meta = await client.modelMetadata('label-1');
    expect(meta.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask']);
    expect(meta.outputs).toEqual([{ name: 'last_hidden_state', datatype: 'FP32', shape: [-1, -1, 8] }]);
    expect((await client.modelConfig('label-1')).max_batch_size).toBe(8);
    const res = await client.infer('label-1', {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 2], data: [101, 102] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 2], data: [1, 1] },
      ],
    });
    expect(res.outputs[0]).toMatchObject({ name: 'last_hidden_state', datatype: 'FP32', shape: [1, 2, 8] });
    expect(res.outputs[0]!.data).toHaveLength(16);
    await client.unloadModel('label-1');
    expect(await client.isModelReady('label-1')).toBe(false);
  });

  it("carries the HTTP status and Triton's error message", async () => {
    const err = await client.loadModel('no-such-model').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TritonError);
    expect((err as TritonError).status).toBe(400);
    expect((err as TritonError).serverMessage).toMatch(/no-such-model/);
    const bad = await client.modelMetadata('label-2').catch((e: unknown) => e);
    expect((bad as TritonError).status).toBe(400);
    expect((bad as TritonError).message).toContain('GET /v2/models/label-2 -> 400');
  });

  it('follows a URL that changes (the embedded server after a restart)', async () => {
    let url = 'http://127.0.0.1:1';
    const moving = new TritonClient({ url: () => url, timeoutMs: 2000 });
    expect(await moving.isReady()).toBe(false);
    url = server.url;
    expect(await moving.isReady()).toBe(true);
  });

  it('rejects a bad URL at once', () => {
    expect(() => new TritonClient({ url: 'nope' })).toThrow(/http\(s\) URL/);
  });
});

describe('TritonClient timeouts', () => {
  let silent: Server;
  beforeAll(async () => {
    // Accepts requests and never answers.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  });
  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('rejects with TimeoutError past the per-call limit', async () => {
    const port = (silent.address() as AddressInfo).port;
    const c = new TritonClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 100, loadTimeoutMs: 150 });
    const err = await c.repositoryIndex().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(100);
    await expect(c.loadModel('x')).rejects.toThrow(/timed out after 150 ms/);
    expect(await c.isReady()).toBe(false);
  });

  it('aborts an infer call when its signal aborts (a cancelled task), closing the request', async () => {
    const port = (silent.address() as AddressInfo).port;
    const c = new TritonClient({ url: `http://127.0.0.1:${port}`, inferTimeoutMs: 60_000 });
    const arrived = new Promise<IncomingMessage>((resolve) => silent.once('request', resolve));
    const controller = new AbortController();
    const call = c.infer('x', { inputs: [] }, { signal: controller.signal }).catch((e: unknown) => e);
    const req = await arrived;
    const closed = new Promise<void>((resolve) => req.socket.once('close', () => resolve()));
    controller.abort(new Error('cancelled by the dispatcher'));
    const err = await call;
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(TimeoutError);
    await closed;
  });
});
