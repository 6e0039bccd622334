import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelPaths } from '@smart-routing/model-repo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionRunError, SessionThread } from '../../src/model-server/session-thread.js';
import { HIDDEN, makeRepository } from './helpers.js';

let repo: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  repo = await makeRepository(1);
});
afterAll(async () => {
  await repo.remove();
});

describe('SessionThread', () => {
  it('loads a model in a thread, reports its signature and runs it', async () => {
    const thread = await SessionThread.open(modelPaths(repo.dir, 'label-1').modelPath);
    try {
      expect(thread.signature).toEqual({
        inputs: [
          { name: 'input_ids', type: 'int64', shape: ['batch', 'seq'] },
          { name: 'attention_mask', type: 'int64', shape: ['batch', 'seq'] },
        ],
        outputs: [{ name: 'last_hidden_state', type: 'float32', shape: ['batch', 'seq', HIDDEN] }],
      });
      const feeds = () => ({
        input_ids: { type: 'int64', dims: [1, 2], data: BigInt64Array.from([3n, 3n]) },
        attention_mask: { type: 'int64', dims: [1, 2], data: BigInt64Array.from([1n, 1n]) },
      });
      const out = await thread.run(feeds(), ['last_hidden_state']);
      const t = out['last_hidden_state']!;
      expect(t.type).toBe('float32');
      expect(t.dims).toEqual([1, 2, HIDDEN]);
      const data = Array.from(t.data as Float32Array);
      expect(data.slice(0, HIDDEN)).toEqual(data.slice(HIDDEN));
      // A runtime error rejects that run only.
      const bad = feeds();
      bad.input_ids.data = BigInt64Array.from([1n, 99_999_999n]);
      await expect(thread.run(bad, ['last_hidden_state'])).rejects.toThrow(SessionRunError);
      expect((await thread.run(feeds(), ['last_hidden_state']))['last_hidden_state']!.dims).toEqual([
        1,
        2,
        HIDDEN,
      ]);
    } finally {
      await thread.close();
    }
  });

  it('close() releases the session: later runs reject; safe to call twice', async () => {
    let exits = 0;
    const thread = await SessionThread.open(modelPaths(repo.dir, 'label-1').modelPath, {
      onExit: () => exits++,
    });
    await Promise.all([thread.close(), thread.close()]);
    await expect(
      thread.run({ input_ids: { type: 'int64', dims: [1, 1], data: BigInt64Array.from([1n]) } }, [
        'last_hidden_state',
      ]),
    ).rejects.toThrow(/the session is closed/);
    expect(exits).toBe(0);
  });

  it('rejects with the runtime message for a file that is not a model', async () => {
    const path = join(repo.dir, 'garbage.onnx');
    await writeFile(path, 'garbage');
    await expect(SessionThread.open(path)).rejects.toThrow(/protobuf|parse|model/i);
    await expect(SessionThread.open(join(repo.dir, 'missing.onnx'))).rejects.toThrow();
  });
});
