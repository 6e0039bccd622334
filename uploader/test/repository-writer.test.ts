import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RepositoryWriter } from '../src/repository-writer.js';

let repo: string;

beforeEach(async () => {
  repo = join(await mkdtemp(join(tmpdir(), 'writer-test-')), 'models');
});

afterEach(async () => {
  await rm(join(repo, '..'), { recursive: true, force: true });
});

async function stageFiles(writer: RepositoryWriter, name: string, content: string, overwrite = false) {
  const staging = await writer.begin(name, { overwrite });
  await writeFile(staging.modelPath, content);
  await writeFile(staging.configPath, `name: "${name}"`);
  return staging;
}

describe('RepositoryWriter', () => {
  it('stages in a hidden folder with the final layout and publishes by rename', async () => {
    const writer = new RepositoryWriter(repo);
    const staging = await stageFiles(writer, 'm', 'v1');
    expect(staging.dir.startsWith(join(repo, '.tmp-m-'))).toBe(true);
    expect(staging.modelPath).toBe(join(staging.dir, '1', 'model.onnx'));
    expect(staging.tokenizerPath).toBe(join(staging.dir, 'tokenizer.json'));
    expect(await writer.publish(staging)).toEqual({ replaced: false });
    expect(await readdir(repo)).toEqual(['m']);
    expect(await readFile(join(repo, 'm', '1', 'model.onnx'), 'utf8')).toBe('v1');
  });

  it('refuses a second upload of a name in progress, and frees it after discard', async () => {
    const writer = new RepositoryWriter(repo);
    const staging = await writer.begin('m', { overwrite: false });
    await expect(writer.begin('m', { overwrite: true })).rejects.toMatchObject({
      code: 'upload_in_progress',
    });
    await writer.discard(staging);
    expect(await readdir(repo)).toEqual([]);
    await writer.discard(await writer.begin('m', { overwrite: false }));
  });

  it('refuses to replace without overwrite, early and at publish time', async () => {
    const writer = new RepositoryWriter(repo);
    await writer.publish(await stageFiles(writer, 'm', 'v1'));
    await expect(writer.begin('m', { overwrite: false })).rejects.toMatchObject({ code: 'model_exists' });
    // Another process publishes the name between begin and publish.
    const staging = await stageFiles(writer, 'n', 'mine');
    await mkdir(join(repo, 'n', '1'), { recursive: true });
    await writeFile(join(repo, 'n', '1', 'model.onnx'), 'theirs');
    await expect(writer.publish(staging)).rejects.toMatchObject({ code: 'model_exists' });
    expect(await readFile(join(repo, 'n', '1', 'model.onnx'), 'utf8')).toBe('theirs');
    expect((await readdir(repo)).sort()).toEqual(['m', 'n']);
  });

  it('replaces with overwrite and removes the old folder', async () => {
    const writer = new RepositoryWriter(repo);
    await writer.publish(await stageFiles(writer, 'm', 'v1'));
    expect(await writer.publish(await stageFiles(writer, 'm', 'v2', true))).toEqual({ replaced: true });
    expect(await readFile(join(repo, 'm', '1', 'model.onnx'), 'utf8')).toBe('v2');
    expect(await readdir(repo)).toEqual(['m']);
  });
});
