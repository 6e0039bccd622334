import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postJson, readRecords, tempDir } from './helpers.js';

// The root `npm test` builds first; the CLI runs from dist like the installed bin.
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

interface Started {
  child: ChildProcess;
  url: string;
  file: string;
  exited: Promise<number | null>;
}

function startCli(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [CLI], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      for (const line of stderr.split('\n')) {
        if (!line.includes('"collector_started"')) continue;
        const { url, file } = JSON.parse(line) as { url: string; file: string };
        resolve({ child, url, file, exited });
      }
    });
    void exited.then((code) => reject(new Error(`cli exited with ${code}: ${stderr}`)));
  });
}

describe('smart-routing-log-collector (cli)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let started: Started | undefined;

  beforeEach(async () => {
    tmp = await tempDir();
  });

  afterEach(async () => {
    if (started && started.child.exitCode === null) {
      started.child.kill('SIGKILL');
      await started.exited;
    }
    started = undefined;
    await tmp.remove();
  });

  it('is built', () => {
    expect(existsSync(CLI), `${CLI} missing: run \`npx tsc -b log-collector\``).toBe(true);
  });

  it('takes its settings from the env and flushes on SIGTERM', async () => {
    started = await startCli({ PORT: '0', HOST: '127.0.0.1', LOG_DIR: tmp.dir, RUN_ID: 'cli-run' });
    expect(started.file).toBe(join(tmp.dir, 'cli-run', 'collector.log'));
    const res = await postJson(started.url, '{"seq":1}\n{"seq":2}\n', 'application/x-ndjson');
    expect(res.status).toBe(200);
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
    expect((await readRecords(started.file)).map((record) => record.seq)).toEqual([1, 2]);
  });

  it('exits 2 with a message on bad config', async () => {
    const child = spawn(process.execPath, [CLI], {
      env: { ...process.env, PORT: 'nope' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid PORT/);
  });
});
