import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLogCollector } from '@smart-routing/log-collector';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

// Runs the built bin (the root `npm test` builds before vitest).
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

function start(
  args: string[],
  env: Record<string, string> = {},
): { proc: ChildProcess; lines: Record<string, unknown>[] } {
  const proc = spawn(process.execPath, [CLI, ...args], {
    // A memory task store: the CLI's default is a SQLite file under the working directory.
    env: { ...process.env, LOG_LEVEL: 'info', TASK_STORE: 'memory', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = proc;
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  proc.stderr!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ text: line });
      }
    }
  });
  return { proc, lines };
}

async function waitForLine(
  lines: Record<string, unknown>[],
  event: string,
): Promise<Record<string, unknown>> {
  // Generous: a process start takes seconds when another process holds a core.
  const deadline = Date.now() + 25_000;
  for (;;) {
    const found = lines.find((l) => l.event === event);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${event} line; got ${JSON.stringify(lines)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('smart-routing-dispatcher (bin)', { timeout: 60_000 }, () => {
  it('logs a ready line with its URL, serves, and drains on SIGTERM', async () => {
    const { proc, lines } = start(['--port', '0', '--host', '127.0.0.1'], { RANDOM_DISPATCH: 'true' });
    const ready = await waitForLine(lines, 'dispatcher_listening');
    expect(ready).toMatchObject({ service: 'dispatcher', policy: 'random' });
    const url = ready.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok', workers: 0 });
    proc.kill('SIGTERM');
    const [code] = (await once(proc, 'exit')) as [number];
    expect(code).toBe(0);
    expect(lines.some((l) => l.event === 'dispatcher_closed')).toBe(true);
  });

  it('exits 2 with a message naming a bad variable', async () => {
    const { proc } = start([], { MAX_QUEUE: '-5' });
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const [code] = (await once(proc, 'exit')) as [number];
    expect(code).toBe(2);
    expect(err).toMatch(/invalid MAX_QUEUE/);
  });

  it('ships its logs to the collector when LOG_COLLECTOR_URL is set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatcher-logs-'));
    const collector = await startLogCollector({
      port: 0,
      host: '127.0.0.1',
      dir,
      logger: pino({ level: 'silent' }),
    });
    try {
      const { proc, lines } = start(['--port', '0', '--host', '127.0.0.1'], {
        LOG_COLLECTOR_URL: collector.url,
      });
      await waitForLine(lines, 'dispatcher_listening');
      proc.kill('SIGTERM');
      expect(((await once(proc, 'exit')) as [number])[0]).toBe(0);
      await collector.close();
      const records = (await readFile(collector.file, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.some((r) => r.service === 'dispatcher' && r.event === 'dispatcher_listening')).toBe(
        true,
      );
    } finally {
      await collector.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
