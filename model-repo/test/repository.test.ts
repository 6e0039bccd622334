import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isValidModelName, listModels, modelPaths } from '../src/index.js';

describe('modelPaths', () => {
  it('follows the Triton layout', () => {
    expect(modelPaths('/repo', 'label-1')).toEqual({
      dir: join('/repo', 'label-1'),
      configPath: join('/repo', 'label-1', 'config.pbtxt'),
      modelPath: join('/repo', 'label-1', '1', 'model.onnx'),
      tokenizerPath: join('/repo', 'label-1', 'tokenizer.json'),
    });
    expect(modelPaths('/repo', 'm', 3).modelPath).toBe(join('/repo', 'm', '3', 'model.onnx'));
  });

  it('refuses names that would leave the repository', () => {
    for (const name of ['', '..', '.', 'a/b', 'a\\b', '.hidden', 'a\0b']) {
      expect(isValidModelName(name)).toBe(false);
      expect(() => modelPaths('/repo', name)).toThrow(/invalid model name/);
    }
  });
});

describe('listModels', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-repo-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists folders with a config.pbtxt, sorted, skipping hidden and incomplete ones', async () => {
    for (const name of ['b', 'a', '.tmp-c', 'no-config']) await mkdir(join(dir, name));
    for (const name of ['b', 'a', '.tmp-c']) await writeFile(join(dir, name, 'config.pbtxt'), 'name: "x"');
    await writeFile(join(dir, 'file.txt'), '');
    expect(await listModels(dir)).toEqual(['a', 'b']);
  });

  it('returns nothing for a missing repository', async () => {
    expect(await listModels(join(dir, 'missing'))).toEqual([]);
  });
});
