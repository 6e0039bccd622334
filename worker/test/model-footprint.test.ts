import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateDemoModels } from '@smart-routing/model-repo';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelManager, type LabelChange } from '../src/label-manager.js';
import { modelFootprintBytes } from '../src/model-footprint.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'footprint-'));
  await generateDemoModels({ dir, count: 2, sizeMb: 0.2, hiddenSize: 8 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Every file's size under `d`, summed the slow, obvious way. */
async function duBytes(d: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    total += e.isDirectory() ? await duBytes(p) : (await stat(p)).size;
  }
  return total;
}

describe('modelFootprintBytes', () => {
  it("sums the label's files in the repository (model, config, tokenizer)", async () => {
    const bytes = await modelFootprintBytes(dir, 'label-1');
    expect(bytes).toBe(await duBytes(path.join(dir, 'label-1')));
    expect(bytes).toBeGreaterThan(0.2 * 1024 * 1024 * 0.9);
  });

  it('rejects for a label the repository does not have', async () => {
    await expect(modelFootprintBytes(dir, 'nope')).rejects.toThrow();
  });
});

describe('LabelManager footprints', () => {
  it('reports the footprint with the loaded change, and none when it cannot be measured', async () => {
    const m = new LabelManager({
      capacity: 2,
      logger: pino({ level: 'silent' }),
      footprintOf: (label) => modelFootprintBytes(dir, label),
    });
    const changes: LabelChange[] = [];
    m.on('change', (c) => changes.push(c));
    (await m.ensureLoaded('label-1')).release();
    (await m.ensureLoaded('missing')).release();
    expect(changes.map((c) => [c.kind, c.label, c.footprintBytes])).toEqual([
      ['loaded', 'label-1', await duBytes(path.join(dir, 'label-1'))],
      ['loaded', 'missing', undefined],
    ]);
  });
});
