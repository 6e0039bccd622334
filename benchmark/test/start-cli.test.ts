import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateDemoModels } from '@smart-routing/model-repo';
import { afterEach, describe, expect, it } from 'vitest';
import { findOnPath } from '../src/redis-binary.js';
import { freePort } from '../src/stack.js';

// `npm start` is `npm run build && exec node benchmark/dist/start-cli.js`; these tests run the built
// launcher (and once `npm start` itself) as real processes, the way a user does.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const startCli = join(root, 'benchmark', 'dist', 'start-cli.js');

interface Launch {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout line that matches. */
  line(pattern: RegExp): Promise<string>;
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

function launch(command: string, args: string[], env: NodeJS.ProcessEnv, detached = false): Launch {
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout.push(line);
    for (const w of waiters.filter((x) => x.pattern.test(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    stdout,
    stderr,
    exit,
    line: (pattern) => {
      const seen = stdout.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<string>((resolve) => waiters.push({ pattern, resolve })),
        exit.then(([code]) => {
          throw new Error(`exited (${code}) before ${pattern}:\n${stdout.join('\n')}\n${stderr.join('\n')}`);
        }),
      ]);
    },
  };
}

/** The launcher's flags for a small stack in `dir`: no demo labels, no uploader, one worker, no model server unless asked. */
function stackArgs(
  dir: string,
  o: { labels?: number; port?: number; workers?: number; uploader?: boolean; modelServer?: boolean } = {},
): string[] {
  return [
    '--models',
    join(dir, 'models'),
    '--labels',
    String(o.labels ?? 0),
    '--port',
    String(o.port ?? 0),
    '--collector-port',
    '0',
    ...(o.uploader ? ['--uploader-port', '0'] : ['--no-uploader']),
    '--workers',
    String(o.workers ?? 1),
    ...(o.modelServer ? [] : ['--triton-url', 'none']),
    '--log-dir',
    join(dir, 'logs'),
  ];
}

/**
 * For one describe block: temp folders (prefix `prefix`) and launches that are cleaned up after
 * each test (a launcher still running is SIGKILLed, its folders removed).
 */
function useLaunches(prefix: string): {
  tempDir(): Promise<string>;
  start(command: string, args: string[], env: NodeJS.ProcessEnv, detached?: boolean): Launch;
} {
  const dirs: string[] = [];
  const launched: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of launched.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return {
    tempDir: async () => {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    start: (command, args, env, detached) => {
      const run = launch(command, args, env, detached);
      launched.push(run.child);
      return run;
    },
  };
}

/** Env for the launcher: this test's env minus what the launcher must not rely on. */
function launcherEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // A memory task store: `npm start` keeps tasks in ./data/tasks.sqlite, which must not outlive a test.
  const env: NodeJS.ProcessEnv = { ...process.env, TASK_STORE: 'memory', ...extra };
  delete env.ORT_DISABLE_TELEMETRY; // the launcher must turn telemetry off by itself
  return env;
}

/** The run folder named in the ready line. */
function runDirOf(readyLine: string): string {
  const m = / -> (\S+)\/collector\.log/.exec(readyLine);
  if (!m) throw new Error(`no log file in: ${readyLine}`);
  return resolve(root, m[1]!);
}

/** Every pid the services logged (their own, and their model servers'). */
async function loggedPids(runDir: string): Promise<Set<number>> {
  const pids = new Set<number>();
  // Log files only: with several dispatchers the run folder also holds redis-server's data folder.
  for (const file of (await readdir(runDir)).filter((f) => f.endsWith('.log'))) {
    for (const line of (await readFile(join(runDir, file), 'utf8')).split('\n')) {
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line) as { pid?: unknown; model_server_pid?: unknown };
      for (const pid of [rec.pid, rec.model_server_pid]) if (typeof pid === 'number') pids.add(pid);
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function events(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { event?: string }).event ?? '');
}

describe('smart-routing-start (npm start)', () => {
  const { tempDir, start } = useLaunches('sr-start-');

  // Regression (issue 11, items 8 and 10): Ctrl-C stopped the collector together with the others (one
  // process group), losing the last logs; PORT leaked into the children; API_KEYS made the launcher's
  // probe fail; ONNX Runtime wrote its telemetry files.
  it('serves a real task, then on Ctrl-C stops every process with the collector last; no env leak, no telemetry', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const models = join(dir, 'models');
    await generateDemoModels({ dir: models, count: 1, sizeMb: 1 });
    const port = await freePort();
    const startedAt = Date.now() - 1000; // mtime granularity
    const run = start(
      process.execPath,
      [startCli, ...stackArgs(dir, { labels: 1, port, uploader: true, modelServer: true })],
      launcherEnv({ PORT: 'abc', API_KEYS: 'key-a,key-b', WORKER_TOKEN: 'worker-secret', HOME: home }),
      true, // its own process group, like a shell's foreground job
    );
    const ready = await run.line(/smart-routing ready/);
    expect(ready).toContain(`dispatcher http://127.0.0.1:${port} `);
    const runDir = runDirOf(ready);

    const body = JSON.stringify({
      task_id: 'cli-1',
      task_type: 'embed_texts',
      label: 'label-1',
      parameters_json: JSON.stringify({ texts: ['hello world'] }),
    });
    const post = (key?: string) =>
      fetch(`http://127.0.0.1:${port}/run-task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) },
        body,
      });
    expect((await post()).status).toBe(401);
    const res = await post('key-b');
    expect(res.status).toBe(200);
    const result = (await res.json()) as { result: { dimensions: number; embeddings: number[][] } };
    expect(result.result.embeddings[0]).toHaveLength(result.result.dimensions);

    const pids = await loggedPids(runDir);
    expect(pids.size).toBeGreaterThanOrEqual(5); // collector, uploader, dispatcher, worker, model server
    process.kill(-run.child.pid!, 'SIGINT'); // what Ctrl-C does: the whole foreground group
    expect(await run.exit).toEqual([0, null]);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    // The collector stopped last, so it has the others' final records.
    const collected = await events(join(runDir, 'collector.log'));
    expect(collected).toContain('worker_closed');
    expect(collected).toContain('dispatcher_closed');
    expect(collected).toContain('uploader_closed');
    // onnxruntime-node's telemetry (source: strings in its libonnxruntime.so; files seen on this
    // machine): /tmp/mat-debug-<pid>.log and ~/.cache/Microsoft/DeveloperTools/.onnxruntime/.
    // (A file of that name from before this run belongs to an earlier process with the same pid.)
    const writtenNow = (file: string): boolean => existsSync(file) && statSync(file).mtimeMs >= startedAt;
    for (const pid of pids) expect(writtenNow(`/tmp/mat-debug-${pid}.log`), `pid ${pid}`).toBe(false);
    expect(existsSync(join(home, '.cache', 'Microsoft'))).toBe(false);
  }, 60_000);

  // Regression (issue 11, item 8): npm runs the script in `sh -c`, which died of npm's SIGTERM and
  // left all the services running.
  it('stops every process when npm running `npm start` gets SIGTERM', async () => {
    const dir = await tempDir();
    const run = start(
      'npm',
      ['start', '--', ...stackArgs(dir, { uploader: true, modelServer: true })],
      launcherEnv({}),
    );
    const ready = await run.line(/smart-routing ready/);
    const runDir = runDirOf(ready);
    const pids = await loggedPids(runDir);
    const launcher = Number(
      (await readFile(`/proc/${run.child.pid}/task/${run.child.pid}/children`, 'utf8')).trim(),
    );
    expect(alive(launcher)).toBe(true);
    run.child.kill('SIGTERM');
    await run.exit;
    await waitUntil(() => !alive(launcher));
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
  }, 60_000);

  it('stops on SIGHUP too', async () => {
    const dir = await tempDir();
    const run = start(process.execPath, [startCli, ...stackArgs(dir)], launcherEnv({}));
    const runDir = runDirOf(await run.line(/smart-routing ready/));
    const pids = await loggedPids(runDir);
    run.child.kill('SIGHUP');
    expect(await run.exit).toEqual([0, null]);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
  }, 60_000);

  // Regression (issue 11, item 8): a failing service showed only a stack trace, its reason in a file.
  it('prints the reason and exits non-zero when a service fails to start', async () => {
    const dir = await tempDir();
    const taken = await freePort();
    const blocker = (await import('node:net')).createServer().listen(taken, '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const run = start(process.execPath, [startCli, ...stackArgs(dir, { port: taken })], launcherEnv({}));
      expect(await run.exit).toEqual([1, null]);
      const err = run.stderr.join('\n');
      expect(err).toMatch(/dispatcher exited with code 1/);
      expect(err).toMatch(/EADDRINUSE/);
      expect(run.stdout.join('\n')).not.toMatch(/smart-routing ready/);
    } finally {
      blocker.close();
    }
  }, 60_000);

  it('prints the reason and exits non-zero when a service dies after start-up', async () => {
    const dir = await tempDir();
    const run = start(process.execPath, [startCli, ...stackArgs(dir)], launcherEnv({}));
    const runDir = runDirOf(await run.line(/smart-routing ready/));
    const workerPid = (await loggedPidsOf(join(runDir, 'worker-1.log')))[0]!;
    process.kill(workerPid, 'SIGKILL');
    expect(await run.exit).toEqual([1, null]);
    expect(run.stderr.join('\n')).toMatch(/worker-1 exited with signal SIGKILL/);
  }, 60_000);
});

describe('smart-routing-start --dispatchers (issue 13)', () => {
  const { tempDir, start } = useLaunches('sr-start-ha-');
  const args = (dir: string, dispatchers: number): string[] => [
    startCli,
    '--dispatchers',
    String(dispatchers),
    ...stackArgs(dir, { workers: 2 }),
  ];

  it('without redis-server on PATH and no REDIS_URL: names the package and REDIS_URL, exits 1 before starting anything', async () => {
    const dir = await tempDir();
    const env = launcherEnv({ PATH: join(dir, 'empty-bin') }); // a folder without redis-server
    delete env.REDIS_URL;
    const run = start(process.execPath, args(dir, 2), env);
    expect(await run.exit).toEqual([1, null]);
    const err = run.stderr.join('\n');
    expect(err).toMatch(/redis-server is not on PATH/);
    expect(err).toMatch(/apt-get install redis-server/);
    expect(err).toMatch(/REDIS_URL/);
    // Nothing started: no demo models, no run folder.
    expect(run.stdout.join('\n')).not.toMatch(/model repository/);
    expect(existsSync(join(dir, 'logs'))).toBe(false);
  }, 30_000);

  it.skipIf(findOnPath('redis-server') === undefined)(
    'runs 2 replicas on a redis-server of its own, workers on both; Ctrl-C stops all of them, redis-server included, the collector last',
    async () => {
      const dir = await tempDir();
      const env = launcherEnv({});
      delete env.REDIS_URL;
      const run = start(process.execPath, args(dir, 2), env, true);
      try {
        await twoReplicaRun(run);
      } finally {
        // A failed check must not leave the services running (afterEach's SIGKILL reaches the launcher only).
        if (run.child.exitCode === null) {
          run.child.kill('SIGTERM');
          await run.exit;
        }
      }
    },
    90_000,
  );

  async function twoReplicaRun(run: Launch): Promise<void> {
    const ready = await run.line(/smart-routing ready/);
    const m =
      /2 dispatchers dispatcher-1 (http:\S+)(?: \((\w+)\))?, dispatcher-2 (http:\S+)(?: \((\w+)\))? on redis:\/\/127\.0\.0\.1:\d+/.exec(
        ready,
      );
    expect(m, ready).not.toBeNull();
    const [, url1, role1, url2, role2] = m!;
    expect(url1).not.toBe(url2);
    // Each replica's role from its /ready: exactly one of the two leads.
    expect([role1, role2].sort(), ready).toEqual(['leader', 'standby']);
    // Both replicas see both workers (the launcher waited for it; check from here too).
    for (const url of [url1!, url2!]) {
      const list = (await (await fetch(`${url}/workers`)).json()) as { id: string }[];
      expect(list.map((w) => w.id).sort()).toEqual(['worker-1', 'worker-2']);
    }
    const runDir = runDirOf(ready);
    const pids = await loggedPids(runDir);
    const redisLog = await readFile(join(runDir, 'redis-server.log'), 'utf8');
    const redisPid = Number(/pid=(\d+)/.exec(redisLog)?.[1]);
    expect(alive(redisPid)).toBe(true);
    expect(existsSync(join(runDir, 'redis'))).toBe(true); // its data lives in the run's folder
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exit).toEqual([0, null]);
    for (const pid of [...pids, redisPid]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    // The collector stopped last: it has both replicas' and the workers' final records.
    const collected = await events(join(runDir, 'collector.log'));
    expect(collected.filter((e) => e === 'dispatcher_closed')).toHaveLength(2);
    expect(collected).toContain('worker_closed');
    // redis-server stopped after the replicas (they closed their Redis clients first).
    expect(await readFile(join(runDir, 'redis-server.log'), 'utf8')).toMatch(/Received SIGTERM/);
  }
});

async function loggedPidsOf(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8');
  return [...new Set([...text.matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1])))];
}

/** Waits until `check` holds (for a process that is not our child, so no exit event to wait for). */
async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 50));
}
