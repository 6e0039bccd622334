/**
 * What the chaos tests share: the services' CLIs run as real child processes (their pino logs kept
 * in files to count from afterwards), stopping them, and waiting for a condition by polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The built CLI of a workspace package (`dispatcher`, `worker`, ...). */
export const cli = (pkg: string): string =>
  join(dirname(fileURLToPath(import.meta.resolve(`@smart-routing/${pkg}`))), 'cli.js');

/** Options of {@link startService}. */
export interface StartServiceOptions {
  /** Append the child's stderr (its pino log) to this file; without one it logs errors only, to ours. */
  logFile?: string;
  /** LOG_LEVEL with a log file [info]. */
  logLevel?: string;
  /** The set of running children the test stops at the end; the child leaves it when it exits. */
  children?: Set<ChildProcess>;
}

/** Starts `node <pkg>/dist/cli.js` with our env plus `env`. */
export function startService(
  pkg: string,
  env: Record<string, string>,
  options: StartServiceOptions = {},
): ChildProcess {
  const { logFile, children } = options;
  const child = spawn(process.execPath, [cli(pkg)], {
    env: { ...process.env, LOG_LEVEL: logFile ? (options.logLevel ?? 'info') : 'error', ...env },
    stdio: ['ignore', 'ignore', logFile ? 'pipe' : 'inherit'],
  });
  if (logFile && child.stderr) child.stderr.pipe(createWriteStream(logFile, { flags: 'a' }));
  if (children) {
    children.add(child);
    child.on('exit', () => children.delete(child));
  }
  return child;
}

/** True until the child has exited. */
export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` (SIGTERM, then SIGKILL after 20 s) and waits for the exit. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!running(child)) return;
  const exited = once(child, 'exit');
  // A stopped process (SIGSTOP) would never act on SIGTERM.
  child.kill('SIGCONT');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** Polls `check` every 100 ms (errors count as "not yet") until it holds; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
