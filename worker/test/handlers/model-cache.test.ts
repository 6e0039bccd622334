import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelCache } from '../../src/handlers/model-cache.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('ModelCache#tokenizer', () => {
  it("regression (issue 11 item 4): a label without tokenizer.json is the label's fault, not bad_parameters", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sr-model-cache-'));
    dirs.push(dir);
    const cache = new ModelCache({ client: undefined, modelRepository: dir });
    const err = await cache.tokenizer('no-tokenizer').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TaskError', code: 'inference_failed' });
    expect((err as Error).message).toMatch(/no-tokenizer has no usable tokenizer .*problem of the model/);
  });
});
