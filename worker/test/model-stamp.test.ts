import { cp, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
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
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { modelStamp, StaleModelCheck } from '../src/model-stamp.js';
import { startWorker, type WorkerHandle } from '../src/worker.js';
import { FakeDispatcher } from './helpers/fake-dispatcher.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sr-model-stamp-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Files under `dir`, relative. */
async function filesOf(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** A whole second, so the times set are exactly the times read back (no sub-ms rounding). */
const KEPT_TIME = 1_700_000_000;

/** Gives every file under `dir` the same fixed times, as `cp -p` or `rsync -t` from one tree would. */
async function setTimes(dir: string): Promise<void> {
  for (const file of await filesOf(dir)) await utimes(path.join(dir, file), KEPT_TIME, KEPT_TIME);
}

describe('modelStamp', () => {
  it('is stable for unchanged files, changes with a rewrite, and is undefined for a missing label', async () => {
    const repo = await tempDir();
    await mkdir(path.join(repo, 'm', '1'), { recursive: true });
    await writeFile(path.join(repo, 'm', 'config.pbtxt'), 'name: "m"\n');
    await writeFile(path.join(repo, 'm', '1', 'model.onnx'), 'aaaa');
    const first = await modelStamp(repo, 'm');
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await modelStamp(repo, 'm')).toBe(first);
    await writeFile(path.join(repo, 'm', '1', 'model.onnx'), 'bbbbbb');
    expect(await modelStamp(repo, 'm')).not.toBe(first);
    expect(await modelStamp(repo, 'absent')).toBeUndefined();
  });

  it('changes when a same-size file is copied in with its old mtime kept (ctime still moves)', async () => {
    const repo = await tempDir();
    await mkdir(path.join(repo, 'm', '1'), { recursive: true });
    await writeFile(path.join(repo, 'm', '1', 'model.onnx'), 'aaaa');
    await setTimes(path.join(repo, 'm'));
    const before = await modelStamp(repo, 'm');
    // ctime has millisecond (or finer) resolution; make sure the clock moved past the first write.
    const t0 = (await stat(path.join(repo, 'm', '1', 'model.onnx'))).ctimeMs;
    while (Date.now() <= t0 + 1) await new Promise((r) => setTimeout(r, 1));
    await writeFile(path.join(repo, 'm', '1', 'model.onnx'), 'bbbb');
    await setTimes(path.join(repo, 'm'));
    expect((await stat(path.join(repo, 'm', '1', 'model.onnx'))).mtimeMs).toBe(KEPT_TIME * 1000);
    expect(await modelStamp(repo, 'm')).not.toBe(before);
  });
});

describe('StaleModelCheck', () => {
  it('re-stamps a label at most every intervalMs and reports a changed stamp until it is remembered', async () => {
    let now = 0;
    let stamp = 's1';
    let reads = 0;
    const check = new StaleModelCheck({
      stampOf: async () => (reads++, stamp),
      intervalMs: 1000,
      now: () => now,
    });
    check.remember('m', 's1');
    stamp = 's2';
    now = 999;
    expect(await check.changed('m')).toBeUndefined();
    expect(reads).toBe(0);
    now = 1000;
    expect(await check.changed('m')).toBe('s2');
    now = 2000;
    expect(await check.changed('m')).toBe('s2');
    check.remember('m', 's2');
    now = 3000;
    expect(await check.changed('m')).toBeUndefined();
    expect(reads).toBe(3);
    // Never loaded (or forgotten): nothing to compare with.
    check.forget('m');
    expect(await check.changed('m')).toBeUndefined();
    expect(() => new StaleModelCheck({ stampOf: async () => 'x', intervalMs: -1 })).toThrow(
      /intervalMs must be >= 0/,
    );
  });
});

/**
 * A real worker with its embedded model server. A model is replaced straight in the repository
 * (not through the dispatcher's /upload-model, which would order an unload): the worker holding it
 * notices at its next task and answers from the new model.
 */
describe('a model replaced in the repository behind the dispatcher', () => {
  const SIZE_MB = 0.25;
  const HIDDEN = 8;
  let repo: string;
  let dispatcher: FakeDispatcher;
  let worker: WorkerHandle | undefined;
  let seq = 0;

  beforeAll(async () => {
    repo = await tempDir();
    await generateDemoModels({ dir: repo, count: 1, sizeMb: SIZE_MB, hiddenSize: HIDDEN, seed: 7 });
    await setTimes(path.join(repo, 'label-1'));
    dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 1000 });
  }, 60_000);
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });
  afterAll(async () => {
    await dispatcher?.close();
  });

  /** The embedding the demo model of base `seed` gives `tokens` (mean of rows, normalised). */
  function expected(seed: number, tokens: string[]): number[] {
    const vocab = demoVocabulary();
    const rows = demoVocabSize(SIZE_MB, HIDDEN, vocab.size);
    const table = new Float32Array(rows * HIDDEN);
    fillDemoWeights(table, demoModelSeed(seed, 1));
    const sum = new Array<number>(HIDDEN).fill(0);
    for (const t of tokens) for (let k = 0; k < HIDDEN; k++) sum[k]! += table[vocab.get(t)! * HIDDEN + k]!;
    const norm = Math.hypot(...sum);
    return sum.map((v) => v / norm);
  }

  async function embed(): Promise<{ vector: number[]; miss: boolean }> {
    const taskId = `stale-${++seq}`;
    const from = dispatcher.received.length;
    dispatcher.send({
      runTask: {
        taskId,
        taskType: 'embed_texts',
        label: 'label-1',
        parametersJson: JSON.stringify({ texts: ['hello world'] }),
        evictLabel: '',
        attempt: 1,
      },
    });
    const r = await dispatcher.result(taskId, from);
    expect(r.error).toBeUndefined();
    const { embeddings } = JSON.parse(r.resultJson!) as { embeddings: number[][] };
    return { vector: embeddings[0]!, miss: r.labelMiss };
  }

  it('regression: the next task after a copy-in (old mtimes kept) answers from the new model', async () => {
    const start = dispatcher.received.length;
    worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-stale',
      maxLabels: 1,
      modelRepository: repo,
      modelRecheckMs: 0,
      logger: pino({ level: 'silent' }),
      reconnectInitialMs: 20,
    });
    await dispatcher.waitFor((m) => m.body === 'hello', start);
    const tokens = ['[CLS]', 'hello', 'world', '[SEP]'];
    const oldWant = expected(7, tokens);
    const newWant = expected(8, tokens);
    const before = await embed();
    before.vector.forEach((v, k) => expect(v).toBeCloseTo(oldWant[k]!, 5));
    expect((await embed()).miss).toBe(false);

    // A new version of the same size, copied over the old files the way `cp -p` / rsync -t would.
    const other = await tempDir();
    await generateDemoModels({ dir: other, count: 1, sizeMb: SIZE_MB, hiddenSize: HIDDEN, seed: 8 });
    const label = path.join(repo, 'label-1');
    await cp(path.join(other, 'label-1'), label, { recursive: true, force: true });
    await setTimes(label);
    expect((await stat(path.join(label, '1', 'model.onnx'))).mtimeMs).toBe(KEPT_TIME * 1000);

    const events = dispatcher.received.length;
    const after = await embed();
    after.vector.forEach((v, k) => expect(v).toBeCloseTo(newWant[k]!, 5));
    expect(after.miss).toBe(true);
    // The dispatcher hears of the reload as a load (it keeps counting the label as held).
    const loaded = dispatcher
      .bodies('labelEvent', events)
      .find((m) => m.labelEvent.kind === 'loaded' && m.labelEvent.label === 'label-1');
    expect(loaded?.labelEvent.message).toMatch(/changed in the repository/);
    const again = await embed();
    expect(again.miss).toBe(false);
    expect(again.vector).toEqual(after.vector);
  }, 60_000);
});
