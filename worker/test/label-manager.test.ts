import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateDemoModels } from '@smart-routing/model-repo';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskError } from '../src/errors.js';
import { LabelManager, type LabelChange } from '../src/label-manager.js';
import { modelFootprintBytes } from '../src/model-footprint.js';
import { startModelServer, type ModelServerHandle } from '../src/model-server/index.js';
import { TritonClient } from '../src/triton-client.js';

const silent = pino({ level: 'silent' });

function record(m: LabelManager): string[] {
  const log: string[] = [];
  m.on('change', (c: LabelChange) => log.push(`${c.kind}:${c.label}`));
  return log;
}

describe('LabelManager (none mode: bookkeeping)', () => {
  it('keeps labels most recently used first and evicts the least recently used when full', async () => {
    const m = new LabelManager({ capacity: 2, logger: silent });
    const log = record(m);
    expect(m.bookkeepingOnly).toBe(true);
    (await m.ensureLoaded('a')).release();
    (await m.ensureLoaded('b')).release();
    expect(m.loaded()).toEqual(['b', 'a']);
    const hit = await m.ensureLoaded('a');
    hit.release();
    expect(hit).toMatchObject({ miss: false, loadMs: 0 });
    expect(m.loaded()).toEqual(['a', 'b']);
    const miss = await m.ensureLoaded('c');
    miss.release();
    expect(miss.miss).toBe(true);
    expect(m.loaded()).toEqual(['c', 'a']);
    expect(log).toEqual(['loaded:a', 'loaded:b', 'evicted:b', 'loaded:c']);
  });

  it('never evicts a label a task is using; goes over capacity and trims back when it is released', async () => {
    const m = new LabelManager({ capacity: 1, logger: silent });
    const log = record(m);
    const a = await m.ensureLoaded('a');
    const b = await m.ensureLoaded('b');
    expect(m.loaded().sort()).toEqual(['a', 'b']);
    a.release();
    await expect.poll(() => m.loaded()).toEqual(['b']);
    b.release();
    expect(log).toEqual(['loaded:a', 'loaded:b', 'evicted:a']);
  });

  it('serialises operations on one label: concurrent requests load it once', async () => {
    const m = new LabelManager({ capacity: 2, logger: silent });
    const log = record(m);
    const results = await Promise.all([m.ensureLoaded('a'), m.ensureLoaded('a'), m.ensureLoaded('a')]);
    results.forEach((r) => r.release());
    expect(results.map((r) => r.miss)).toEqual([true, false, false]);
    expect(log).toEqual(['loaded:a']);
  });

  it('unload reports the eviction, and nothing for a label not loaded', async () => {
    const m = new LabelManager({ capacity: 2, logger: silent });
    const log = record(m);
    expect(await m.load('a')).toBe(true);
    expect(await m.unload('a')).toEqual(expect.any(Number));
    expect(await m.unload('a')).toBeUndefined();
    expect(log).toEqual(['loaded:a', 'evicted:a']);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new LabelManager({ capacity: 0, logger: silent })).toThrow(/capacity/);
  });
});

describe('LabelManager with a model server', () => {
  let dir: string;
  let server: ModelServerHandle;
  let client: TritonClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sr-labels-'));
    await generateDemoModels({ dir, count: 3, sizeMb: 0.05, hiddenSize: 8 });
    server = await startModelServer({ repository: dir, logger: silent });
    client = new TritonClient({ url: server.url });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('really loads and unloads through the model server, with measured durations', async () => {
    const m = new LabelManager({ capacity: 2, client, logger: silent });
    const changes: LabelChange[] = [];
    m.on('change', (c) => changes.push(c));
    for (const l of ['label-1', 'label-2', 'label-3']) (await m.ensureLoaded(l)).release();
    expect(m.loaded()).toEqual(['label-3', 'label-2']);
    expect(await client.isModelReady('label-1')).toBe(false);
    expect(await client.isModelReady('label-3')).toBe(true);
    expect(changes.map((c) => `${c.kind}:${c.label}`)).toEqual([
      'loaded:label-1',
      'loaded:label-2',
      'evicted:label-1',
      'loaded:label-3',
    ]);
    expect(changes.every((c) => c.durationMs > 0)).toBe(true);
    await m.unload('label-2');
    await m.unload('label-3');
  });

  it('fails with label_not_found for a model the repository lacks, and reports load_failed', async () => {
    const m = new LabelManager({ capacity: 2, client, logger: silent });
    const log = record(m);
    const err = await m.ensureLoaded('label-99').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).code).toBe('label_not_found');
    expect(log).toEqual(['load_failed:label-99']);
    expect(m.loaded()).toEqual([]);
  });

  it('resync adopts what the server holds and reports what it lost', async () => {
    const m = new LabelManager({ capacity: 2, client, logger: silent });
    (await m.ensureLoaded('label-1')).release();
    // Behind its back: label-1 goes, label-2 comes.
    await client.unloadModel('label-1');
    await client.loadModel('label-2');
    const log = record(m);
    await m.resync('test');
    expect(log).toEqual(['evicted:label-1', 'loaded:label-2']);
    expect(m.loaded()).toEqual(['label-2']);
    m.forgetAll('gone');
    expect(log.slice(2)).toEqual(['evicted:label-2']);
    await client.unloadModel('label-2');
  });
});

describe('LabelManager memory budget (generated models of different sizes, real model server)', () => {
  let dir: string;
  let server: ModelServerHandle;
  let client: TritonClient;
  const fp: Record<string, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sr-budget-'));
    // label-1 big, label-2/3 small, label-4 medium.
    await generateDemoModels({ dir, count: 4, sizesMb: [0.6, 0.2, 0.2, 0.3], hiddenSize: 8 });
    for (const l of ['label-1', 'label-2', 'label-3', 'label-4']) fp[l] = await modelFootprintBytes(dir, l);
    server = await startModelServer({ repository: dir, logger: silent });
    client = new TritonClient({ url: server.url });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const manager = (memoryBudgetBytes: number): LabelManager =>
    new LabelManager({
      capacity: 4,
      client,
      logger: silent,
      footprintOf: (label) => modelFootprintBytes(dir, label),
      memoryBudgetBytes,
    });

  it('evicts least recently used labels until the new one fits, not one-for-one', async () => {
    const budget = fp['label-1']! + fp['label-4']!;
    const m = manager(budget);
    const log = record(m);
    for (const l of ['label-2', 'label-3', 'label-4']) (await m.ensureLoaded(l)).release();
    // Three fit in the budget (and in 4 slots): nothing evicted yet.
    expect(log).toEqual(['loaded:label-2', 'loaded:label-3', 'loaded:label-4']);
    (await m.ensureLoaded('label-1')).release();
    // The big one needs the room of both small ones: two evictions for one load.
    expect(log.slice(3)).toEqual(['evicted:label-2', 'evicted:label-3', 'loaded:label-1']);
    expect(m.loaded()).toEqual(['label-1', 'label-4']);
    expect(m.usedBytes()).toBe(budget);
    expect(await client.isModelReady('label-2')).toBe(false);
    expect(await client.isModelReady('label-1')).toBe(true);
    // A small one fits after evicting the least recently used (label-4) only.
    (await m.ensureLoaded('label-2')).release();
    expect(log.slice(6)).toEqual(['evicted:label-4', 'loaded:label-2']);
    expect(m.usedBytes()).toBeLessThanOrEqual(budget);
    m.forgetAll('done');
    await client.unloadModel('label-1');
    await client.unloadModel('label-2');
  });

  it('without a budget the label count alone limits, as before', async () => {
    const m = manager(0);
    const log = record(m);
    for (const l of ['label-2', 'label-3', 'label-4', 'label-1']) (await m.ensureLoaded(l)).release();
    expect(log.filter((c) => c.startsWith('evicted'))).toEqual([]);
    expect(m.memoryBudgetBytes).toBe(Infinity);
    for (const l of m.loaded()) await m.unload(l);
  });

  it('refuses a label larger than the whole budget without evicting anything', async () => {
    const m = manager(fp['label-1']! - 1);
    const log = record(m);
    (await m.ensureLoaded('label-2')).release();
    const err = await m.ensureLoaded('label-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).code).toBe('label_load_failed');
    expect((err as TaskError).message).toMatch(/more than the memory budget/);
    expect(log).toEqual(['loaded:label-2']);
    await m.unload('label-2');
  });

  it('goes over budget rather than evict a label in use, and trims back when it is released', async () => {
    const m = manager(fp['label-1']! + fp['label-2']!);
    const log = record(m);
    const big = await m.ensureLoaded('label-1');
    const medium = await m.ensureLoaded('label-4');
    expect(m.usedBytes()).toBeGreaterThan(m.memoryBudgetBytes);
    big.release();
    await expect.poll(() => log.length).toBe(3);
    expect(m.loaded()).toEqual(['label-4']);
    expect(m.usedBytes()).toBeLessThanOrEqual(m.memoryBudgetBytes);
    medium.release();
    expect(log).toEqual(['loaded:label-1', 'loaded:label-4', 'evicted:label-1']);
    await m.unload('label-4');
  });

  it('rejects a negative budget', () => {
    expect(() => new LabelManager({ capacity: 1, logger: silent, memoryBudgetBytes: -1 })).toThrow(
      /memoryBudgetBytes/,
    );
  });
});
