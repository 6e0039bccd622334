import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelPaths } from '@smart-routing/model-repo';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelServerError } from '../../src/model-server/errors.js';
import { ModelStore } from '../../src/model-server/model-store.js';
import { makeRepository, memoryLogger } from './helpers.js';

let repo: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  repo = await makeRepository(2);
});
afterAll(async () => {
  await repo.remove();
});

const feeds = () => ({
  input_ids: { type: 'int64', dims: [1, 2], data: BigInt64Array.from([3n, 4n]) },
  attention_mask: { type: 'int64', dims: [1, 2], data: BigInt64Array.from([1n, 1n]) },
});

describe('ModelStore', () => {
  let store: ModelStore;
  let mem: ReturnType<typeof memoryLogger>;

  beforeEach(() => {
    mem = memoryLogger();
    store = new ModelStore({ repository: repo.dir, logger: mem.logger });
  });
  afterEach(async () => {
    await store.close();
  });

  it('#load: READY after load; concurrent loads of one model join one load', async () => {
    const a = store.load('label-1');
    const b = store.load('label-1');
    expect(b).toBe(a);
    await a;
    expect(store.isReady('label-1')).toBe(true);
    expect(store.isReady('label-1', '1')).toBe(true);
    expect(store.isReady('label-1', '2')).toBe(false);
    expect(mem.records.filter((r) => r.event === 'model_loaded')).toHaveLength(1);
    // Unchanged on disk: a second load is a no-op.
    await store.load('label-1');
    expect(mem.records.filter((r) => r.event === 'model_loaded')).toHaveLength(1);
    expect(await store.index(true)).toEqual([{ name: 'label-1', state: 'READY', reason: '', version: '1' }]);
  });

  it('#load: a model the repository lacks stays unknown; a bad name is refused', async () => {
    await expect(store.load('nope')).rejects.toThrow(
      "failed to load 'nope', failed to poll from model repository",
    );
    await expect(store.load('../etc')).rejects.toBeInstanceOf(ModelServerError);
    expect((await store.index()).map((e) => e.name)).toEqual(['label-1', 'label-2']);
    expect(() => store.model('nope')).toThrow("Request for unknown model: 'nope' is not found");
  });

  it('#load: a changed config reloads while the old session keeps serving', async () => {
    const dir = join(repo.dir, '..', `${repo.dir.split('/').pop()}-reload`);
    await mkdir(dir, { recursive: true });
    const src = modelPaths(repo.dir, 'label-2');
    const dst = modelPaths(dir, 'label-2');
    await mkdir(join(dst.dir, '1'), { recursive: true });
    await writeFile(dst.modelPath, await readFile(src.modelPath));
    await writeFile(dst.configPath, await readFile(src.configPath));
    const own = new ModelStore({ repository: dir, logger: mem.logger });
    try {
      await own.load('label-2');
      const first = own.model('label-2');
      await appendFile(dst.configPath, '\n# changed\n');
      const reload = own.load('label-2');
      // Still READY on the old session during the reload.
      expect(own.model('label-2')).toBe(first);
      await reload;
      expect(own.model('label-2')).not.toBe(first);
      expect(mem.records.filter((r) => r.event === 'model_loaded' && r.reload === true)).toHaveLength(1);
    } finally {
      await own.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('#model and #run: runs the session; a runtime error is a 400 and the model keeps serving', async () => {
    await store.load('label-1');
    const m = store.model('label-1');
    const out = await store.run(m, { feeds: feeds(), outputs: ['last_hidden_state'], batch: 1 });
    expect(out.outputs['last_hidden_state']!.dims).toEqual([1, 2, 8]);
    const bad = feeds();
    bad.input_ids.data = BigInt64Array.from([1n, 99_999_999n]);
    const err = await store
      .run(m, { feeds: bad, outputs: ['last_hidden_state'], batch: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelServerError);
    expect((err as ModelServerError).status).toBe(400);
    expect((err as Error).message).toMatch(/^inference failed for model 'label-1': /);
    expect(
      (await store.run(m, { feeds: feeds(), outputs: ['last_hidden_state'], batch: 1 })).outputs[
        'last_hidden_state'
      ]!.dims,
    ).toEqual([1, 2, 8]);
    expect(() => store.model('label-1', '7')).toThrow(
      "Request for unknown model: 'label-1' version 7 is not found",
    );
  });

  it('#unload: waits for in-flight runs, then UNAVAILABLE "unloaded"; a no-op when not loaded', async () => {
    await store.unload('label-2');
    await store.load('label-1');
    const m = store.model('label-1');
    const running = store.run(m, { feeds: feeds(), outputs: ['last_hidden_state'], batch: 1 });
    const unloading = store.unload('label-1');
    // The run that was in flight still completes.
    expect((await running).outputs['last_hidden_state']!.dims).toEqual([1, 2, 8]);
    await unloading;
    expect((await store.index())[0]).toEqual({
      name: 'label-1',
      state: 'UNAVAILABLE',
      reason: 'unloaded',
      version: '1',
    });
    expect(() => store.model('label-1')).toThrow("'label-1' has no available versions");
    // Load after unload runs after it.
    await store.load('label-1');
    expect(store.isReady('label-1')).toBe(true);
  });

  it('#close: unloads everything, refuses new loads, safe to call twice', async () => {
    await store.load('label-1');
    await Promise.all([store.close(), store.close()]);
    expect(store.isReady('label-1')).toBe(false);
    await expect(store.load('label-2')).rejects.toThrow('Server is shutting down');
  });

  it('owns its spare thread: closing one store leaves another able to load', async () => {
    const other = new ModelStore({ repository: repo.dir, logger: mem.logger });
    await other.close();
    await store.load('label-2');
    expect(store.isReady('label-2')).toBe(true);
  });
});
