import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Starts a whole local stack as separate processes, the way a user runs it:
 *
 *   log-collector ──< logs ──┬── dispatcher ──ws── worker 1 ── model server (child of the worker)
 *                            └──────────────────── worker N ── model server
 *
 * Used by `npm start` and by the benchmark when no `--dispatcher-url` is given.
 * Shutdown order (close): workers first (they drain and stop their model servers), then the
 * dispatcher, then the collector last so it receives everyone's final logs.
 */

/** Options of `startStack`. */
export interface StackOptions {
  /** Model repository folder (must exist, with the labels to serve). */
  modelRepository: string;
  /** Number of worker processes. Default 2. */
  workers?: number;
  /** Labels each worker can hold. Default 2. */
  labelCapacity?: number;
  /** Concurrent tasks per worker. Default 1. */
  slots?: number;
  /** Routing policy name. Default 'affinity'. */
  policy?: string;
  /** Dispatcher port; 0 picks a free one. Default 0. */
  dispatcherPort?: number;
  /** Log collector port; 0 picks a free one. Default 0. */
  collectorPort?: number;
  /** Folder for the collector's runs. Default './logs'. */
  logDir?: string;
  /** Run id (folder under logDir). Default a timestamp. */
  runId?: string;
  /** Loopback host for every service. Default 127.0.0.1. */
  host?: string;
  /** Worker TRITON_URL: unset = each worker starts its embedded model server; 'none' = no model server. */
  tritonUrl?: string;
  /** Whether the dispatcher checks labels against the repository (404 for unknown ones). Default true. */
  dispatcherChecksRepository?: boolean;
  /** Extra env for the dispatcher. */
  dispatcherEnv?: Record<string, string>;
  /**
   * Where each child's own output (pino JSON on stderr) goes: 'inherit' (this terminal), 'ignore',
   * or 'files' (`<logDir>/<runId>/<service>.log`, beside the collector's file). Default 'ignore'.
   */
  output?: 'inherit' | 'ignore' | 'files';
  /** Log level of the children. Default 'info'. */
  logLevel?: string;
  /** How long to wait for everything to come up. Default 60 s. */
  readyTimeoutMs?: number;
}

/** A running stack. */
export interface Stack {
  readonly dispatcherUrl: string;
  readonly collectorUrl: string;
  readonly runId: string;
  /** The collector's JSON Lines file for this run. */
  readonly logFile: string;
  readonly workerIds: string[];
  /** Process ids, for CPU accounting. */
  readonly pids: { dispatcher: number; collector: number; workers: number[] };
  /** Stops every process, workers first, collector last. Safe to call twice. */
  close(): Promise<void>;
}

function packageDist(name: string): string {
  return dirname(fileURLToPath(import.meta.resolve(`@smart-routing/${name}`)));
}

/** Asks the OS for a free loopback port (closed again before use; fine for a local launcher). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  deadline: number,
  child?: ChildProcess,
): Promise<void> {
  for (;;) {
    if (child && child.exitCode !== null)
      throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} was not ready in time`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Starts collector, dispatcher and workers; resolves when every worker has registered. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const host = options.host ?? '127.0.0.1';
  const workers = options.workers ?? 2;
  const runId = options.runId ?? new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = options.logDir ?? './logs';
  const runDir = join(logDir, runId);
  if (options.output === 'files') mkdirSync(runDir, { recursive: true });
  const outputFor = (name: string): 'inherit' | 'ignore' | number =>
    options.output === 'files' ? openSync(join(runDir, `${name}.log`), 'a') : (options.output ?? 'ignore');
  const logLevel = options.logLevel ?? 'info';
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  const children: ChildProcess[] = [];
  const spawnService = (pkg: string, env: Record<string, string>, name = pkg): ChildProcess => {
    const out = outputFor(name);
    const child = spawn(process.execPath, [join(packageDist(pkg), 'cli.js')], {
      env: { ...process.env, LOG_LEVEL: logLevel, ...env },
      stdio: ['ignore', out, out],
    });
    if (typeof out === 'number') closeSync(out); // the child has its own copy
    children.push(child);
    return child;
  };

  let closed: Promise<void> | undefined;
  const workerProcs: ChildProcess[] = [];
  // If this process exits without close() (a signal, a crash), take the children down with it.
  const killChildren = (): void => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('exit', killChildren);
  const close = (): Promise<void> => {
    closed ??= (async () => {
      process.off('exit', killChildren);
      await Promise.all(workerProcs.map((w) => stopChild(w, 15_000)));
      const rest = children.filter((c) => !workerProcs.includes(c)).reverse();
      for (const child of rest) await stopChild(child, 10_000);
    })();
    return closed;
  };

  try {
    const collectorPort = options.collectorPort || (await freePort(host));
    const collectorUrl = `http://${host}:${collectorPort}`;
    const collector = spawnService('log-collector', {
      PORT: String(collectorPort),
      HOST: host,
      LOG_DIR: logDir,
      RUN_ID: runId,
    });
    await waitFor(
      'log collector',
      async () => (await fetch(`${collectorUrl}/health`)).ok,
      deadline,
      collector,
    );

    const dispatcherPort = options.dispatcherPort || (await freePort(host));
    const dispatcherUrl = `http://${host}:${dispatcherPort}`;
    const dispatcher = spawnService('dispatcher', {
      PORT: String(dispatcherPort),
      HOST: host,
      ROUTING_POLICY: options.policy ?? 'affinity',
      ...(options.dispatcherChecksRepository === false ? {} : { MODEL_REPOSITORY: options.modelRepository }),
      LOG_COLLECTOR_URL: collectorUrl,
      ...options.dispatcherEnv,
    });
    await waitFor(
      'dispatcher',
      async () => (await fetch(`${dispatcherUrl}/health`)).ok,
      deadline,
      dispatcher,
    );

    const workerIds = Array.from({ length: workers }, (_, i) => `worker-${i + 1}`);
    for (const id of workerIds) {
      const env: Record<string, string> = {
        DISPATCHER_URL: dispatcherUrl.replace(/^http/, 'ws'),
        WORKER_ID: id,
        WORKER_MAX_LABELS: String(options.labelCapacity ?? 2),
        WORKER_SLOTS: String(options.slots ?? 1),
        MODEL_REPOSITORY: options.modelRepository,
        LOG_COLLECTOR_URL: collectorUrl,
      };
      if (options.tritonUrl) env.TRITON_URL = options.tritonUrl;
      workerProcs.push(spawnService('worker', env, id));
    }
    await waitFor(
      `${workers} workers`,
      async () => {
        const res = await fetch(`${dispatcherUrl}/workers`);
        const list = (await res.json()) as { id: string }[];
        return workerIds.every((id) => list.some((w) => w.id === id));
      },
      deadline,
    );
    for (const w of workerProcs) {
      w.on('exit', (code, signal) => {
        if (!closed) process.emitWarning(`worker process ${w.pid} exited (code ${code}, signal ${signal})`);
      });
    }

    return {
      dispatcherUrl,
      collectorUrl,
      runId,
      logFile: join(runDir, 'collector.log'),
      workerIds,
      pids: {
        dispatcher: dispatcher.pid ?? 0,
        collector: collector.pid ?? 0,
        workers: workerProcs.map((w) => w.pid ?? 0),
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
