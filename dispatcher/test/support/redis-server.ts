/**
 * Starts a real redis-server (Debian's /usr/bin/redis-server) for one test file: a free loopback
 * port, a temp dir, no RDB snapshots, the append-only file on (so a restart keeps the data), and
 * resolves once it logs that it accepts connections. `stop()` ends it and removes the dir.
 * Outages for tests: `pause()` / `resume()` (SIGSTOP / SIGCONT: a frozen server, its connections
 * stay open) and `kill()` / `start()` (SIGKILL, then a new server on the same port and dir; every
 * write is fsynced, so a kill loses nothing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The server binary the tests use. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** Why Redis tests are skipped here, or undefined when the binary is present. */
export const redisMissing: string | undefined = existsSync(REDIS_SERVER)
  ? undefined
  : `${REDIS_SERVER} is missing (apt-get install redis-server; .ci/run does)`;

/** A running redis-server. */
export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its data dir (holds the append-only file). */
  readonly dir: string;
  /** Stops it gracefully (SIGTERM: it flushes the append-only file) and starts it again on the same port and dir. */
  restart(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Kills it (SIGKILL) and waits for the exit; connections are reset. */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir after {@link kill}. */
  start(): Promise<void>;
  /** Stops it and removes its dir; safe twice. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
  // Keep draining so a chatty server never blocks on a full pipe.
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGCONT'); // a paused server would not act on SIGTERM
  child.kill(signal);
  await exited;
}

/** Starts a redis-server; retries on a port taken between the probe and the start. */
export async function startRedisServer(): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir);
    } catch (error) {
      if (attempt === 4) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let stopped = false;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async restart() {
      await terminate(child!);
      child = await launch(port, dir);
    },
    pause() {
      child!.kill('SIGSTOP');
    },
    resume() {
      child!.kill('SIGCONT');
    },
    async kill() {
      await terminate(child!, 'SIGKILL');
    },
    async start() {
      if (child!.exitCode === null && child!.signalCode === null) throw new Error('redis-server is running');
      child = await launch(port, dir);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(child!);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
