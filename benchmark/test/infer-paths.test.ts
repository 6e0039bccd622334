import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServerHandle } from '@smart-routing/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelFile, writeInferBenchModels, type InferBenchModels } from '../src/infer-bench-models.js';
import {
  benchTensor,
  grpcPath,
  ortPath,
  runTaskPath,
  v2HttpPath,
  type InferPath,
} from '../src/infer-paths.js';
import { freePort } from '../src/stack.js';

// The benchmark's clients against the real embedded model server (binary HTTP and gRPC), which
// speaks the protocol the dispatcher's v2 front implements.

let dir: string;
let models: InferBenchModels;
let server: ModelServerHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-infer-paths-'));
  models = await writeInferBenchModels(dir);
  server = await startModelServer({ repository: dir, grpcPort: 0, logger: pino({ level: 'silent' }) });
  for (const m of [models.image.name, models.large.name]) {
    const res = await fetch(`${server.url}/v2/repository/models/${m}/load`, { method: 'POST' });
    expect(res.status).toBe(200);
  }
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function using<T>(path: InferPath, fn: (p: InferPath) => Promise<T>): Promise<T> {
  try {
    return await fn(path);
  } finally {
    await path.close();
    await path.close(); // safe twice
  }
}

describe('benchTensor', () => {
  it('is deterministic, in [0, 1) and not constant', () => {
    const a = benchTensor([1, 3, 4, 4]);
    expect(a.length).toBe(48);
    expect(Array.from(a)).toEqual(Array.from(benchTensor([1, 3, 4, 4])));
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThan(1);
    expect(new Set(a).size).toBeGreaterThan(40);
  });
});

describe('writeInferBenchModels', () => {
  it('the large-output model runs in onnxruntime-node and gives 1x40x6625', async () => {
    const m = models.large;
    await using(await ortPath(modelFile(dir, m.name), m, benchTensor(m.input.shape)), (p) => p.infer());
    const wrong = { ...m, output: { ...m.output, shape: [1, 40, 6624] } };
    await using(await ortPath(modelFile(dir, m.name), wrong, benchTensor(m.input.shape)), async (p) => {
      await expect(p.infer()).rejects.toThrow("output 'logits' has 265000 elements, expected 264960");
    });
  });
});

describe('v2HttpPath', () => {
  it('runs binary infer on the image and the large-output model', async () => {
    for (const m of [models.image, models.large]) {
      await using(v2HttpPath(server.url, m, benchTensor(m.input.shape), 2), async (p) => {
        await Promise.all([p.infer(), p.infer()]);
      });
    }
  });

  it("rejects with the server's answer for a model it lacks, and for a short output", async () => {
    const m = models.image;
    await using(v2HttpPath(server.url, { ...m, name: 'nope' }, benchTensor(m.input.shape), 1), async (p) => {
      await expect(p.infer()).rejects.toThrow(/^HTTP 400: .*nope/);
    });
    const wrong = { ...m, output: { ...m.output, shape: [1, 999] } };
    await using(v2HttpPath(server.url, wrong, benchTensor(m.input.shape), 1), async (p) => {
      await expect(p.infer()).rejects.toThrow('has 1000 elements, expected 999');
    });
  });
});

describe('grpcPath', () => {
  it('runs ModelInfer with raw contents on the image and the large-output model', async () => {
    for (const m of [models.image, models.large]) {
      await using(grpcPath(server.grpcAddress!, m, benchTensor(m.input.shape)), async (p) => {
        await Promise.all([p.infer(), p.infer()]);
      });
    }
  });

  it('rejects with the gRPC status when nothing listens', async () => {
    const m = models.image;
    const port = await freePort();
    await using(grpcPath(`127.0.0.1:${port}`, m, benchTensor(m.input.shape), 10_000), async (p) => {
      await expect(p.infer()).rejects.toThrow(/^gRPC 14 UNAVAILABLE/);
    });
  });
});

describe('runTaskPath', () => {
  // A stand-in for the dispatcher's /run-task (unit test of the client's request and answer).
  let fake: Server;
  let url: string;
  const bodies: Record<string, unknown>[] = [];
  beforeAll(async () => {
    fake = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        bodies.push(body);
        const params = JSON.parse(body.parameters_json as string) as { inputs: { data: number[] }[] };
        const n = body.label === 'short' ? 999 : 1000;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            task_id: body.task_id,
            status: 'completed',
            result: {
              outputs: [
                {
                  name: 'logits',
                  datatype: 'FP32',
                  shape: [1, n],
                  data: [params.inputs[0]!.data.slice(0, n)],
                },
              ],
            },
          }),
        );
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    url = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => fake.close(() => r())));

  it('sends an infer task with the tensor as JSON numbers and a fresh task_id each time', async () => {
    const m = models.image;
    const input = benchTensor(m.input.shape);
    await using(runTaskPath(url, m, input, 2), async (p) => {
      await p.infer();
      await p.infer();
    });
    expect(bodies).toHaveLength(2);
    expect(bodies[0]!.task_id).not.toBe(bodies[1]!.task_id);
    expect(bodies[0]).toMatchObject({ task_type: 'infer', label: 'image-224' });
    const params = JSON.parse(bodies[0]!.parameters_json as string) as {
      inputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
    };
    expect(params.inputs[0]).toMatchObject({ name: 'pixels', datatype: 'FP32', shape: [1, 3, 224, 224] });
    expect(params.inputs[0]!.data).toEqual(Array.from(input));
  });

  it('rejects an answer with too few output elements', async () => {
    const m = { ...models.image, name: 'short' };
    await using(runTaskPath(url, m, benchTensor(m.input.shape), 1), async (p) => {
      await expect(p.infer()).rejects.toThrow('has 999 elements, expected 1000');
    });
  });
});
