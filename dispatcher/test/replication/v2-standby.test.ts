// The KServe v2 front on a standby replica (issue 13): two replicas on one real redis-server, a
// real worker (@smart-routing/worker) linked to both, whose model server is a stand-in speaking
// the v2 HTTP protocol on a real socket. Infer bodies are NVIDIA's Triton Python client's own bytes
// (tritonclient.http, github.com/triton-inference-server/client, recorded in
// kserve/test/fixtures/tritonclient-vectors.json), so what the standby forwards through Redis is
// checked against bytes this project did not write.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startWorker } from '@smart-routing/worker';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DispatcherHandle } from '../../src/dispatcher.js';
import { GRPC_INFERENCE_SERVICE } from '../../src/kserve-front/grpc-front.js';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { ReplicaSet, replicaOf, silent, until } from './replicas.js';
import { tritonclientVector } from '../../../kserve/test/fixtures/tritonclient-vectors.js';

const vector = (name: string): { body: Buffer; headerLength: number } => {
  const { body, headerLength } = tritonclientVector(name);
  return { body, headerLength: headerLength ?? 0 };
};

const REQUEST = vector('docs-example-request');
const JSON_REQUEST = vector('json-only-request');
const RESPONSE = vector('docs-example-response');
const JSON_RESPONSE = Buffer.from(
  '{"model_name":"m","outputs":[{"name":"o","datatype":"FP32","shape":[1],"data":[2]}]}',
);
const METADATA = {
  name: 'm',
  versions: ['1'],
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }],
  outputs: [{ name: 'o', datatype: 'FP32', shape: [1] }],
};

/**
 * A model server holding model `m` only: binary requests get Triton's docs example response, JSON
 * ones a JSON answer. Counts infers; while `hold` is set, infers wait for {@link release}.
 */
class ModelServerStandIn {
  readonly infers: { body: Buffer; headerLength: string | undefined }[] = [];
  hold = false;
  private readonly held: (() => void)[] = [];
  private readonly server: Server = createServer((req, res) => void this.answer(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get heldCount(): number {
    return this.held.length;
  }

  release(): void {
    this.hold = false;
    for (const go of this.held.splice(0)) go();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = req.url ?? '';
    const json = (status: number, value: unknown): void =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const model = /^\/v2\/(?:repository\/)?models\/([^/]+)/.exec(url)?.[1];
    if (url === '/v2/health/ready' || url === '/v2/health/live') return void res.writeHead(200).end();
    if (url === '/v2/repository/index') return json(200, [{ name: 'm', state: 'READY' }]);
    if (model !== undefined && model !== 'm')
      return json(400, { error: `Request for unknown model: '${model}' is not found` });
    if (url.endsWith('/load') || url.endsWith('/unload') || url.endsWith('/ready'))
      return void res.writeHead(200).end();
    if (url === '/v2/models/m') return json(200, METADATA);
    if (url === '/v2/models/m/infer') {
      const headerLength = req.headers['inference-header-content-length'] as string | undefined;
      this.infers.push({ body: Buffer.concat(chunks), headerLength });
      if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
      if (headerLength === undefined)
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON_RESPONSE);
      return void res
        .writeHead(200, {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(RESPONSE.headerLength),
        })
        .end(RESPONSE.body);
    }
    json(404, { error: `no route ${url}` });
  }
}

interface Answer {
  status: number;
  type: string | null;
  header: string | null;
  body: Buffer;
}

async function infer(url: string, model: string, body: Buffer, headerLength: number): Promise<Answer> {
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: headerLength > 0 ? { 'Inference-Header-Content-Length': String(headerLength) } : {},
    body,
  });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    header: res.headers.get('inference-header-content-length'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

async function get(url: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: await res.text() };
}

let server: RedisServerHandle;
let set: ReplicaSet | undefined;
let stand: ModelServerStandIn | undefined;
let repo: string | undefined;
const clients: grpc.Client[] = [];
let prefixes = 0;

beforeAll(async () => {
  if (!redisMissing) server = await startRedisServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await set?.close();
  set = undefined;
  await stand?.close();
  stand = undefined;
  if (repo) await rm(repo, { recursive: true, force: true });
  repo = undefined;
});
afterAll(async () => {
  await server?.stop();
});

/** Replicas a (the leader) and b (a standby) and a real worker on both, with the stand-in model server. */
async function twoReplicas(
  extra: Parameters<ReplicaSet['replica']>[1] = {},
): Promise<{ a: DispatcherHandle; b: DispatcherHandle; model: ModelServerStandIn; prefix: string }> {
  const prefix = `v2ha${++prefixes}:`;
  set = new ReplicaSet(server.url, prefix);
  stand = new ModelServerStandIn();
  await stand.start();
  const a = await set.replica('a', extra);
  await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
  const b = await set.replica('b', extra);
  repo = await mkdtemp(join(tmpdir(), 'v2ha-repo-'));
  const w = await startWorker({
    dispatcherUrls: [a.url, b.url],
    workerId: 'w1',
    slots: 4,
    tritonUrl: stand.url,
    modelRepository: repo,
    healthProbeIntervalMs: 0,
    logger: silent,
    reconnectInitialMs: 50,
    reconnectMaxMs: 200,
  });
  set.workers.push(w);
  await until(() => a.router.workerCount === 1 && b.router.workerCount === 1, 'the worker on both');
  expect((await replicaOf(b.url)).role).toBe('standby');
  return { a, b, model: stand, prefix };
}

type Call = (req: object) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function grpcClient(d: DispatcherHandle): Record<string, Call> {
  const c = new GRPC_INFERENCE_SERVICE(d.grpcAddress!, grpc.credentials.createInsecure());
  clients.push(c);
  const rpc =
    (name: string): Call =>
    (req) =>
      new Promise((resolve, reject) =>
        (c as unknown as Record<string, (...args: unknown[]) => void>)[name]!.call(
          c,
          req,
          new grpc.Metadata(),
          {},
          (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)),
        ),
      );
  return Object.fromEntries(['ServerReady', 'ModelReady', 'ModelInfer'].map((n) => [n, rpc(n)]));
}

describe.skipIf(redisMissing !== undefined)(
  'the v2 front on a standby (real redis-server, real worker)',
  () => {
    it("answers binary and JSON infers with the leader's bytes, the request reaching the model server untouched", async () => {
      const { a, b, model, prefix } = await twoReplicas();
      const onLeader = await infer(a.url, 'm', REQUEST.body, REQUEST.headerLength);
      const onStandby = await infer(b.url, 'm', REQUEST.body, REQUEST.headerLength);
      expect(onLeader.status).toBe(200);
      expect(onStandby).toEqual(onLeader);
      expect(onStandby.header).toBe(String(RESPONSE.headerLength));
      expect(onStandby.body.equals(RESPONSE.body)).toBe(true);

      const jsonOnStandby = await infer(b.url, 'm', JSON_REQUEST.body, 0);
      const jsonOnLeader = await infer(a.url, 'm', JSON_REQUEST.body, 0);
      expect(jsonOnStandby.status).toBe(200);
      expect(jsonOnStandby).toEqual(jsonOnLeader);
      expect(jsonOnStandby.body.equals(JSON_RESPONSE)).toBe(true);

      expect(model.infers).toHaveLength(4);
      for (const i of [0, 1]) {
        expect(model.infers[i]!.body.equals(REQUEST.body)).toBe(true);
        expect(model.infers[i]!.headerLength).toBe(String(REQUEST.headerLength));
      }
      expect(model.infers[2]!.body.equals(JSON_REQUEST.body)).toBe(true);
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      expect(metrics).toMatch(/dispatcher_forwarded_tasks_total 2/);
      // The standby read its answers: no body is left in Redis, only the two tasks' records.
      const redis = new Redis(server.url);
      try {
        expect(await redis.keys(`${prefix}infer-*`)).toEqual([]);
        expect(await redis.keys(`${prefix}task:v2-*`)).toHaveLength(2);
      } finally {
        redis.disconnect();
      }
    });

    it('answers gRPC ModelInfer on the standby as the leader does', async () => {
      const { a, b } = await twoReplicas({ grpcPort: 0 });
      const request = {
        model_name: 'm',
        id: 'req-1',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }],
        raw_input_contents: [Buffer.from(new Float32Array([1]).buffer)],
      };
      const onLeader = await grpcClient(a).ModelInfer!(request);
      const onStandby = await grpcClient(b).ModelInfer!(request);
      expect(onLeader.model_name).toBe('mymodel'); // Triton's docs example response
      expect(onStandby).toEqual(onLeader);
    });

    it('answers metadata and readiness on the standby from its own picture, HTTP and gRPC', async () => {
      const { a, b } = await twoReplicas({ grpcPort: 0 });
      // The model is loaded on the worker by a first infer.
      expect((await infer(a.url, 'm', REQUEST.body, REQUEST.headerLength)).status).toBe(200);
      await until(() => b.router.worker('w1')?.labels.includes('m') === true, "b to see w1 hold 'm'");

      const meta = await get(b.url, '/v2/models/m');
      expect(meta.status).toBe(200);
      expect(JSON.parse(meta.body)).toEqual(METADATA);
      expect(meta).toEqual(await get(a.url, '/v2/models/m'));
      expect((await get(b.url, '/v2/health/ready')).status).toBe(200);
      expect((await get(b.url, '/v2/models/m/ready')).status).toBe(200);
      expect((await get(b.url, '/v2/models/other/ready')).status).toBe(503);
      const rpc = grpcClient(b);
      expect(await rpc.ServerReady!({})).toEqual({ ready: true });
      expect(await rpc.ModelReady!({ name: 'm' })).toEqual({ ready: true });
      expect(await rpc.ModelReady!({ name: 'other' })).toEqual({ ready: false });
    });

    it('a forwarded infer running when the leader is closed completes once after the failover', async () => {
      const { a, b, model } = await twoReplicas();
      model.hold = true;
      const answer = infer(b.url, 'm', REQUEST.body, REQUEST.headerLength);
      await until(() => model.heldCount === 1, 'the infer to run on the model server');

      await a.close(); // no drain: the task stays running on w1
      await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
      await until(() => b.router.worker('w1')?.inFlight.size === 1, 'b to adopt the infer');
      model.release();
      const got = await answer;
      expect(got.status).toBe(200);
      expect(got.body.equals(RESPONSE.body)).toBe(true);
      expect(got.header).toBe(String(RESPONSE.headerLength));
      expect(model.infers).toHaveLength(1);
      await until(() => b.router.worker('w1')?.inFlight.size === 0, 'the slot freed on b', 5000);
      expect(model.infers).toHaveLength(1);
    });

    it("a standby's client that goes away ends the stored infer cancelled; the leader stops it on its worker", async () => {
      const { a, b, model, prefix } = await twoReplicas();
      model.hold = true;
      const abort = new AbortController();
      const answer = fetch(`${b.url}/v2/models/m/infer`, {
        method: 'POST',
        headers: { 'Inference-Header-Content-Length': String(REQUEST.headerLength) },
        body: REQUEST.body,
        signal: abort.signal,
      }).catch((err: unknown) => err);
      await until(() => model.heldCount === 1, 'the infer to run on the model server');
      expect(a.router.worker('w1')?.inFlight.size).toBe(1);
      abort.abort();
      expect(await answer).toBeInstanceOf(Error);
      const redis = new Redis(server.url);
      try {
        const [key] = await redis.keys(`${prefix}task:v2-*`);
        await until(
          async () => (await redis.hget(key!, 'status')) === 'cancelled',
          'the record to end cancelled',
        );
        await until(
          () => a.router.worker('w1')?.inFlight.size === 0,
          "the slot freed on the leader's worker",
        );
        await until(async () => (await redis.keys(`${prefix}infer-*`)).length === 0, 'the body dropped');
      } finally {
        redis.disconnect();
      }
      expect(model.infers).toHaveLength(1);
    });

    it('forwards a body at MAX_INFER_BODY_BYTES; one byte more gets the same 413 as on the leader', async () => {
      const limit = 4096;
      const { a, b, model } = await twoReplicas({ maxInferBodyBytes: limit });
      // JSON whitespace pads the JSON-only request to the limit.
      const atLimit = Buffer.concat([
        JSON_REQUEST.body,
        Buffer.alloc(limit - JSON_REQUEST.body.length, 0x20),
      ]);
      const ok = await infer(b.url, 'm', atLimit, 0);
      expect(ok.status).toBe(200);
      expect(model.infers.at(-1)!.body.equals(atLimit)).toBe(true);
      const over = Buffer.concat([atLimit, Buffer.from(' ')]);
      const onStandby = await infer(b.url, 'm', over, 0);
      expect(onStandby.status).toBe(413);
      expect(onStandby).toEqual(await infer(a.url, 'm', over, 0));
    });

    it("an unknown model on the standby gets the leader's Triton-shaped error", async () => {
      const { a, b } = await twoReplicas();
      // Two names: a worker that lacked one is not asked for it again at once.
      const onLeader = await infer(a.url, 'nope-a', REQUEST.body, REQUEST.headerLength);
      expect(onLeader.status).toBe(404);
      const onStandby = await infer(b.url, 'nope-b', REQUEST.body, REQUEST.headerLength);
      expect({ ...onStandby, body: onStandby.body.toString('utf8').replace('nope-b', 'nope-a') }).toEqual({
        ...onLeader,
        body: onLeader.body.toString('utf8'),
      });
      expect(JSON.parse(onStandby.body.toString('utf8'))).toEqual({
        error: expect.stringContaining('nope-b'),
      });
    });
  },
);
