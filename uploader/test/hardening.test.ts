import { networkInterfaces, tmpdir } from 'node:os';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOnnxModel, OnnxDataType } from '@smart-routing/model-repo';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUploader, type UploaderHandle, type UploaderOptions } from '../src/server.js';
import { writeEmbeddingFixture } from './fixtures.js';

// Regression tests for issue 11, item 3: the uploader's local source read any folder on its host
// over HTTP, followed symlinks (a linked system file ended up in the repository), put file contents
// into a producer-facing error, had no auth and bound 0.0.0.0.

let dir: string;
let repo: string;
let root: string;
let outside: string;
let uploader: UploaderHandle | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-upl-hard-'));
  repo = join(dir, 'repo');
  root = join(dir, 'imports');
  outside = join(dir, 'elsewhere');
  await mkdir(root);
  await mkdir(outside);
});

afterEach(async () => {
  await uploader?.close();
  uploader = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Partial<UploaderOptions> = {}): Promise<UploaderHandle> {
  uploader = await startUploader({
    repository: repo,
    port: 0,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  return uploader;
}

async function post(
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { error?: { code: string; message: string }; model_name?: string } }> {
  const res = await fetch(`${uploader!.url}/upload-model`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never };
}

const published = async (): Promise<string[]> =>
  (await readdir(repo).catch(() => [])).filter((n) => !n.startsWith('.'));

describe('local imports', () => {
  it('are refused over HTTP unless LOCAL_IMPORT_ROOT is set', async () => {
    await writeEmbeddingFixture(join(outside, 'm'), { layout: 'flat' });
    await start();
    const res = await post({ model_id: 'm', source: 'local', path: join(outside, 'm') });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('local_import_disabled');
    expect(await published()).toEqual([]);
  });

  it('read only under the root: relative paths resolve inside it, escapes are refused', async () => {
    await writeEmbeddingFixture(join(root, 'ok'), { layout: 'flat' });
    await writeEmbeddingFixture(join(outside, 'm'), { layout: 'flat' });
    await start({ localImportRoot: root });
    expect((await post({ model_id: 'ok', source: 'local', path: 'ok' })).status).toBe(201);
    for (const path of [join(outside, 'm'), '../elsewhere/m', 'ok/../../elsewhere/m', '/etc']) {
      const res = await post({ model_id: 'escape', source: 'local', path });
      expect(res.status, path).toBe(403);
      expect(res.body.error?.code, path).toBe('local_path_forbidden');
    }
    expect(await published()).toEqual(['ok']);
  });

  it('refuse symbolic links: the folder, a folder on the way, the model and the tokenizer', async () => {
    await writeEmbeddingFixture(join(outside, 'm'), { layout: 'flat' });
    await writeEmbeddingFixture(join(root, 'real'), { layout: 'flat' });
    await symlink(join(outside, 'm'), join(root, 'linked-folder'));
    await symlink(outside, join(root, 'linked-parent'));
    await mkdir(join(root, 'linked-model'));
    await symlink(join(outside, 'm', 'model.onnx'), join(root, 'linked-model', 'model.onnx'));
    await writeEmbeddingFixture(join(root, 'linked-tokenizer'), { layout: 'flat' });
    await rm(join(root, 'linked-tokenizer', 'tokenizer.json'));
    await symlink('/etc/passwd', join(root, 'linked-tokenizer', 'tokenizer.json'));
    await start({ localImportRoot: root });
    for (const path of ['linked-folder', 'linked-parent/m', 'linked-model', 'linked-tokenizer']) {
      const res = await post({ model_id: path.replace('/', '-'), source: 'local', path });
      expect(res.status, path).toBe(403);
      expect(res.body.error?.code, path).toBe('local_path_forbidden');
      expect(res.body.error?.message, path).toMatch(/symbolic link/);
    }
    expect(await published()).toEqual([]);
    // A plain folder in the same root still works.
    expect((await post({ model_id: 'real', source: 'local', path: 'real' })).status).toBe(201);
  });
});

describe('invalid_onnx errors', () => {
  it('never quote the file', async () => {
    const secret = 'SECRET_7f3a';
    // A text file (think /etc/passwd) and a well-formed ONNX graph whose op and names are the secret:
    // parser and ONNX Runtime messages quote such strings.
    await mkdir(join(root, 'text'));
    await writeFile(join(root, 'text', 'model.onnx'), `root:x:0:0:${secret}:/root:/bin/sh\n`);
    await mkdir(join(root, 'graph'));
    const sig = { name: `${secret}_in`, elemType: OnnxDataType.FLOAT, dims: [1, 2] };
    await writeFile(
      join(root, 'graph', 'model.onnx'),
      encodeOnnxModel({
        name: secret,
        node: [{ opType: `${secret}_op`, input: [sig.name], output: [`${secret}_out`] }],
        initializer: [],
        input: [sig],
        output: [{ ...sig, name: `${secret}_out` }],
      }),
    );
    await start({ localImportRoot: root });
    for (const path of ['text', 'graph']) {
      const res = await post({ model_id: path, source: 'local', path, max_batch_size: 0 });
      expect(res.status, path).toBe(422);
      expect(res.body.error?.code, path).toBe('invalid_onnx');
      expect(res.body.error?.message, path).not.toContain(secret);
    }
  });
});

describe('API keys', () => {
  it('guard every route but /health, by bearer token or x-api-key', async () => {
    await writeEmbeddingFixture(join(root, 'm'), { layout: 'flat' });
    await start({ apiKeys: ['key-one', 'key-two'], localImportRoot: root });
    const body = { model_id: 'm', source: 'local', path: 'm' };
    const wrong: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope' },
      { 'x-api-key': 'key-one-and-more' },
    ];
    for (const headers of wrong) {
      const res = await post(body, headers);
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe('unauthorized');
    }
    expect((await fetch(`${uploader!.url}/models`)).status).toBe(401);
    expect((await fetch(`${uploader!.url}/health`)).status).toBe(200);
    expect((await post(body, { 'x-api-key': 'key-two' })).status).toBe(201);
    const models = await fetch(`${uploader!.url}/models`, { headers: { authorization: 'Bearer key-one' } });
    expect(await models.json()).toEqual({ models: [{ name: 'm', has_tokenizer: true }] });
  });
});

describe('bind address', () => {
  it('is loopback by default', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    await start();
    expect(uploader!.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect((await fetch(`${uploader!.url}/health`)).status).toBe(200);
    // Where the machine has another interface, the port is not reachable on it.
    if (external) {
      await expect(fetch(`http://${external}:${uploader!.port}/health`)).rejects.toThrow();
    }
  });
});
