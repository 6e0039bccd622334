import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alive, call, embedRequest, makeRepository } from './helpers.js';

// Spawns the built bin: run `npx tsc -b worker` first (the root `npm test` does).
const cli = fileURLToPath(new URL('../../dist/model-server/cli.js', import.meta.url));

let repo: { dir: string; remove(): Promise<void> };
const children: ChildProcess[] = [];

beforeAll(async () => {
  repo = await makeRepository(1);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  await repo.remove();
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  });
  children.push(child);
  return child;
}

async function readyLine(child: ChildProcess): Promise<{ url: string; port: number; pid: number }> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  return JSON.parse(line) as { url: string; port: number; pid: number };
}

describe('smart-routing-model-server', () => {
  it('prints a ready line with its url, serves, and exits 0 on SIGTERM', async () => {
    const child = start(['--repository', repo.dir, '--port', '0']);
    const ready = await readyLine(child);
    expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.pid).toBe(child.pid);
    expect((await call(ready.url, 'GET', '/v2/health/ready')).status).toBe(200);
    expect((await call(ready.url, 'POST', '/v2/repository/models/label-1/load')).status).toBe(200);
    expect((await call(ready.url, 'POST', '/v2/models/label-1/infer', embedRequest([[1, 2]]))).status).toBe(
      200,
    );
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('reads PORT, HOST and MODEL_REPOSITORY from the environment and exits on SIGINT', async () => {
    const child = start([], { PORT: '0', HOST: '127.0.0.1', MODEL_REPOSITORY: repo.dir });
    const ready = await readyLine(child);
    expect((await call(ready.url, 'POST', '/v2/repository/index')).body).toEqual([{ name: 'label-1' }]);
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('exits with its parent when --exit-with-parent and stdin closes', async () => {
    const child = start(['--repository', repo.dir, '--port', '0', '--exit-with-parent']);
    await readyLine(child);
    child.stdin!.end();
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(alive(child.pid!)).toBe(false);
  });

  it('refuses a bad environment with exit code 2', async () => {
    const child = start([], { PORT: 'eighty' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid environment: PORT/);
  });

  it('refuses a bad --port flag', async () => {
    const child = start(['--port', '70000']);
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).not.toBe(0);
  });
});
