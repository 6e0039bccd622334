import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildEmbeddingFixture, writeEmbeddingFixture } from './fixtures.js';
import { startFakeHub, type FakeHub } from './hub-server.js';

// Runs the built CLI (the root `npm test` builds first).
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let scratch: string;
let hub: FakeHub;
const children: ChildProcess[] = [];

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'uploader-cli-test-'));
  hub = await startFakeHub();
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await hub.close();
  await rm(scratch, { recursive: true, force: true });
});

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('smart-routing-uploader upload', () => {
  it('uploads from a local folder and refuses to overwrite without --overwrite', async () => {
    await writeEmbeddingFixture(join(scratch, 'src'), { layout: 'flat' });
    const repo = join(scratch, 'models');
    const args = [
      'upload',
      'my-model',
      '--from-dir',
      join(scratch, 'src'),
      '--repository',
      repo,
      '--max-batch-size',
      '2',
    ];
    const first = await run(args);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'uploaded', model_name: 'my-model' });
    expect(await readFile(join(repo, 'my-model', 'config.pbtxt'), 'utf8')).toContain('max_batch_size: 2');
    const second = await run(args);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('model_exists');
    expect((await run([...args, '--overwrite'])).code).toBe(0);
    expect(await readdir(repo)).toEqual(['my-model']);
  });

  it('uploads from the hub at HF_ENDPOINT with HF_TOKEN, logging progress but not the token', async () => {
    const fixture = buildEmbeddingFixture();
    hub.setModel('org/m', { 'onnx/model.onnx': fixture.onnx, 'tokenizer.json': fixture.tokenizerJson });
    const repo = join(scratch, 'models');
    const token = 'hf_cli_secret_987';
    const result = await run(['upload', 'org/m'], {
      HF_ENDPOINT: hub.url,
      HF_TOKEN: token,
      MODEL_REPOSITORY: repo,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).model_name).toBe('org--m');
    expect(result.stderr).toContain('"event":"download_finished"');
    expect(result.stderr).not.toContain(token);
    expect(hub.requests.find((r) => r.path.endsWith('onnx/model.onnx'))?.authorization).toBe(
      `Bearer ${token}`,
    );
  });

  it('exits non-zero with the error code for a bad id', async () => {
    const result = await run(['upload', '../x', '--repository', join(scratch, 'models')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid_model_id');
  });
});

describe('smart-routing-uploader serve', () => {
  it('serves /health and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        MODEL_REPOSITORY: join(scratch, 'm'),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/[\w.:-]+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    expect(await (await fetch(`${url}/health`)).json()).toMatchObject({ status: 'ok' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
