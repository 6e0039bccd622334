import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  demoModelSeed,
  demoVocabSize,
  demoVocabulary,
  fillDemoWeights,
  generateDemoModels,
} from '@smart-routing/model-repo';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type WorkerHandle } from '../src/worker.js';
import { FakeDispatcher } from './helpers/fake-dispatcher.js';

/**
 * A real worker with its embedded model server (a child process running dist/model-server/cli.js)
 * and real ONNX inference, driven over a real socket by the fake dispatcher.
 */

const SIZE_MB = 0.25;
const HIDDEN = 16;
const SEED = 7;
const BIG = 'label-3'; // written larger, so its load takes a while

let dir: string;
let dispatcher: FakeDispatcher;
let worker: WorkerHandle;
let seq = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sr-worker-models-'));
  await generateDemoModels({ dir, count: 2, sizeMb: SIZE_MB, hiddenSize: HIDDEN, seed: SEED });
  // A third, bigger one: existing models are kept, so this pass writes only label-3.
  await generateDemoModels({ dir, count: 3, sizeMb: 96, hiddenSize: HIDDEN, seed: SEED });
  dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 10 });
  worker = await startWorker({
    dispatcherUrl: dispatcher.url,
    workerId: 'w-models',
    maxLabels: 2,
    modelRepository: dir,
    logger: pino({ level: 'silent' }),
    reconnectInitialMs: 20,
  });
  await dispatcher.waitFor((m) => m.body === 'hello');
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await dispatcher?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function send(fields: { taskType: string; label: string; parameters: unknown; evictLabel?: string }): string {
  const taskId = `m${++seq}`;
  dispatcher.send({
    runTask: {
      taskId,
      taskType: fields.taskType,
      label: fields.label,
      parametersJson: JSON.stringify(fields.parameters),
      evictLabel: fields.evictLabel ?? '',
      attempt: 1,
    },
  });
  return taskId;
}

/** The embedding the demo model must give, computed here from its seed: mean of rows, normalised. */
function expectedEmbedding(label: string, tokens: string[]): number[] {
  const vocab = demoVocabulary();
  const i = Number(label.split('-')[1]);
  const rows = demoVocabSize(SIZE_MB, HIDDEN, vocab.size);
  const table = new Float32Array(rows * HIDDEN);
  fillDemoWeights(table, demoModelSeed(SEED, i));
  const sum = new Array<number>(HIDDEN).fill(0);
  for (const t of tokens) {
    const id = vocab.get(t);
    if (id === undefined) throw new Error(`test vocabulary lacks ${t}`);
    for (let k = 0; k < HIDDEN; k++) sum[k]! += table[id * HIDDEN + k]!;
  }
  const mean = sum.map((v) => v / tokens.length);
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

describe('embed_texts on the embedded model server', () => {
  it('advertises every task type, echo as label-free', () => {
    const hello = dispatcher.received.find((m) => m.body === 'hello');
    expect(hello?.body === 'hello' && hello.hello.taskTypes.sort()).toEqual([
      'echo',
      'embed_texts',
      'infer',
      'kserve_infer',
      'kserve_metadata',
    ]);
    expect(hello?.body === 'hello' && hello.hello.labelFreeTaskTypes).toEqual(['echo']);
    expect(worker.modelServerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('returns unit vectors equal to the masked mean of the model rows', async () => {
    const texts = ['Hello world', 'the weather today', 'hello world'];
    const r = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-1', parameters: { texts } }),
    );
    expect(r.error).toBeUndefined();
    expect(r.labelMiss).toBe(true);
    expect(r.loadMs).toBeGreaterThan(0);
    const { embeddings, dimensions } = JSON.parse(r.resultJson!) as {
      embeddings: number[][];
      dimensions: number;
    };
    expect(dimensions).toBe(HIDDEN);
    expect(embeddings).toHaveLength(3);
    for (const e of embeddings) expect(Math.hypot(...e)).toBeCloseTo(1, 5);
    // Row 0 is padded to row 1's length: the [PAD] position must not count.
    const want0 = expectedEmbedding('label-1', ['[CLS]', 'hello', 'world', '[SEP]']);
    const want1 = expectedEmbedding('label-1', ['[CLS]', 'the', 'weather', 'today', '[SEP]']);
    embeddings[0]!.forEach((v, k) => expect(v).toBeCloseTo(want0[k]!, 5));
    embeddings[1]!.forEach((v, k) => expect(v).toBeCloseTo(want1[k]!, 5));
    // Deterministic (same text, same vector), and different texts differ.
    expect(embeddings[2]).toEqual(embeddings[0]);
    expect(embeddings[1]).not.toEqual(embeddings[0]);
  });

  it('gives another model other vectors, and the same ones again on a hit', async () => {
    const texts = ['hello world'];
    const a = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-2', parameters: { texts } }),
    );
    const b = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-2', parameters: { texts } }),
    );
    expect(b.labelMiss).toBe(false);
    const ea = (JSON.parse(a.resultJson!) as { embeddings: number[][] }).embeddings[0]!;
    const eb = (JSON.parse(b.resultJson!) as { embeddings: number[][] }).embeddings[0]!;
    expect(eb).toEqual(ea);
    const want = expectedEmbedding('label-2', ['[CLS]', 'hello', 'world', '[SEP]']);
    ea.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 5));
    expect(b.loadedLabels).toEqual(['label-2', 'label-1']);
  });

  it('runs a label-free echo without touching labels, whatever label and evict_label it carries', async () => {
    const from = dispatcher.received.length;
    const r = await dispatcher.result(
      send({ taskType: 'echo', label: 'label-2', evictLabel: 'label-1', parameters: { x: 1 } }),
      from,
    );
    expect(r).toMatchObject({ resultJson: '{"echo":{"x":1}}', labelMiss: false, loadMs: 0 });
    expect(r.loadedLabels).toEqual(['label-2', 'label-1']);
    expect(dispatcher.bodies('labelEvent', from)).toEqual([]);
  });

  it('splits more texts than max_batch_size (8) into several requests', async () => {
    const texts = Array.from({ length: 19 }, (_, i) => (i % 2 ? 'hello world' : 'the weather today'));
    const r = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-1', parameters: { texts } }),
    );
    const { embeddings } = JSON.parse(r.resultJson!) as { embeddings: number[][] };
    expect(embeddings).toHaveLength(19);
    expect(embeddings[17]).toEqual(embeddings[1]);
    expect(embeddings[18]).toEqual(embeddings[0]);
  });

  it('rejects bad parameters before loading anything', async () => {
    const from = dispatcher.received.length;
    for (const parameters of [
      { texts: [] },
      { texts: [''] },
      { texts: 'hi' },
      { text: ['hi'] },
      { texts: [1] },
    ]) {
      const r = await dispatcher.result(send({ taskType: 'embed_texts', label: 'label-2', parameters }));
      expect(r.error?.code).toBe('bad_parameters');
      expect(r.error?.message).toMatch(/^embed_texts: texts/);
    }
    expect(dispatcher.bodies('labelEvent', from)).toEqual([]);
  });

  it('answers label_not_found for a model the repository lacks', async () => {
    const r = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-404', parameters: { texts: ['x'] } }),
    );
    expect(r.error?.code).toBe('label_not_found');
    const failed = await dispatcher.waitFor(
      (m) => m.body === 'labelEvent' && m.labelEvent.kind === 'load_failed',
    );
    expect(failed.body === 'labelEvent' && failed.labelEvent.label).toBe('label-404');
  });
});

describe('infer on the embedded model server', () => {
  it('passes KServe v2 tensors through and returns the outputs', async () => {
    const vocab = demoVocabulary();
    const ids = [101, vocab.get('hello')!, 102];
    const r = await dispatcher.result(
      send({
        taskType: 'infer',
        label: 'label-1',
        parameters: {
          inputs: [
            { name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: ids },
            { name: 'attention_mask', datatype: 'INT64', shape: [1, 3], data: [1, 1, 1] },
          ],
        },
      }),
    );
    const { outputs } = JSON.parse(r.resultJson!) as {
      outputs: { name: string; shape: number[]; data: number[] }[];
    };
    expect(outputs[0]).toMatchObject({ name: 'last_hidden_state', shape: [1, 3, HIDDEN] });
    // Row of "hello" alone: mean of one row, normalised, equals the row normalised.
    const hello = outputs[0]!.data.slice(HIDDEN, 2 * HIDDEN);
    const want = expectedEmbedding('label-1', ['hello']);
    const norm = Math.hypot(...hello);
    hello.forEach((v, k) => expect(v / norm).toBeCloseTo(want[k]!, 5));
  });

  it('maps tensors that do not fit the model to bad_parameters with the server message', async () => {
    const r = await dispatcher.result(
      send({
        taskType: 'infer',
        label: 'label-1',
        parameters: { inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: [1, 2] }] },
      }),
    );
    expect(r.error?.code).toBe('bad_parameters');
    expect(r.error?.message).toMatch(/input_ids/);
  });
});

describe('worker liveness around the model server', () => {
  it('keeps sending heartbeats while a model loads', async () => {
    const from = dispatcher.received.length;
    const t = send({ taskType: 'embed_texts', label: BIG, parameters: { texts: ['hello'] } });
    const loaded = await dispatcher.waitFor(
      (m) => m.body === 'labelEvent' && m.labelEvent.label === BIG,
      from,
      30_000,
    );
    const during = dispatcher
      .bodies('heartbeat', from)
      .filter((h) => h.at < loaded.at && h.heartbeat.inFlight === 1 && h.heartbeat.pingId === 0);
    expect(loaded.body === 'labelEvent' && loaded.labelEvent.kind).toBe('loaded');
    expect(during.length).toBeGreaterThanOrEqual(2);
    const r = await dispatcher.result(t, from);
    expect(r.labelMiss).toBe(true);
  });

  it('reports its labels gone when the model server dies, and loads again after the restart', async () => {
    const before = (
      await dispatcher.result(
        send({ taskType: 'embed_texts', label: 'label-1', parameters: { texts: ['hi'] } }),
      )
    ).loadedLabels;
    expect(before).toContain('label-1');
    // The model server is this test process's child running model-server/cli.js.
    const child = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], {
      encoding: 'utf8',
    })
      .split('\n')
      .find((line) => line.includes('model-server'));
    const pid = Number(child?.trim().split(/\s+/)[0]);
    expect(pid).toBeGreaterThan(0);
    const oldUrl = worker.modelServerUrl;
    const from = dispatcher.received.length;
    process.kill(pid, 'SIGKILL');
    const gone = await dispatcher.waitFor(
      (m) => m.body === 'labelEvent' && m.labelEvent.kind === 'evicted' && m.labelEvent.label === 'label-1',
      from,
    );
    expect(gone.body === 'labelEvent' && gone.labelEvent.message).toMatch(/model server/);
    await expect
      .poll(() => worker.modelServerUrl !== oldUrl && worker.modelServerUrl !== '', { timeout: 20_000 })
      .toBe(true);
    const r = await dispatcher.result(
      send({ taskType: 'embed_texts', label: 'label-1', parameters: { texts: ['hi'] } }),
    );
    expect(r.error).toBeUndefined();
    expect(r.labelMiss).toBe(true);
    expect(r.loadedLabels).toEqual(['label-1']);
  }, 40_000);
});
