import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { redisServerBinary } from './redis-binary.js';

/**
 * Starts a whole local stack as separate processes, the way a user runs it:
 *
 *   log-collector ──< logs ──┬── dispatcher ──ws── worker 1 ── model server (child of the worker)
 *                            │        └─ /upload-model ── uploader (optional)
 *                            └──────────────────── worker N ── model server
 *
 * Used by `npm start` and by the benchmark when no `--dispatcher-url` is given.
 *
 * With `dispatchers: N > 1` (issue 13) the stack runs N dispatcher replicas on one Redis (a
 * `redis-server` child on a free port, data in the run's folder, unless `redisUrl` names one), each
 * with its own REPLICA_ID and ports; every worker gets DISPATCHER_URLS listing all replicas:
 *
 *   log-collector ── redis-server ──┬── dispatcher-1 ──ws──┬── worker 1
 *                                   └── dispatcher-N ──ws──┴── worker M
 *
 * Start-up: collector, redis-server, uploader, dispatcher(s), workers, in that order. A service counts as up only
 * when *its own* process logged that it listens (matched by pid, so a second stack on taken ports
 * cannot mistake the first stack's services for its own) and it answers; workers are up when the
 * dispatcher lists them. A child that exits first fails the start at once with the last lines of
 * its log.
 *
 * Shutdown order (close): workers first (they drain and stop their model servers), then the
 * dispatcher replicas, then the uploader, then redis-server, then the collector last so it receives everyone's final logs.
 * Children run in their own process groups, so a Ctrl-C in the terminal reaches only the launcher,
 * which then stops them in that order.
 *
 * Each child gets exactly its own environment: a few basics (PATH, HOME, locale, TMPDIR) plus its
 * own settings, never the launcher's whole env (a stray PORT must not move a service).
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
  /**
   * Memory budget of every worker, bytes (WORKER_MEMORY_BUDGET_BYTES): the dispatcher then evicts
   * until a label fits by its measured footprint. Default none (only `labelCapacity` limits).
   */
  memoryBudgetBytes?: number;
  /** Routing policy name. Default 'affinity'. */
  policy?: string;
  /**
   * Dispatcher port; 0 picks a free one. Default 0. With several replicas, replica i (from 0) listens
   * on this port + 10 * i (8080, 8090, ...), or on free ones when it is 0.
   */
  dispatcherPort?: number;
  /**
   * Dispatcher replicas sharing one Redis (REDIS_URL, REPLICA_ID `dispatcher-<i>`). Default 1: one
   * dispatcher, no Redis, exactly as before.
   */
  dispatchers?: number;
  /**
   * The replicas' REDIS_URL. Default: with `dispatchers` > 1, a `redis-server` (found on PATH, else
   * RedisMissingError) started by the stack on a free port, data under the run's folder.
   */
  redisUrl?: string;
  /** Log collector port; 0 picks a free one. Default 0. */
  collectorPort?: number;
  /** Start an uploader (the dispatcher forwards `POST /upload-model` to it). Default false. */
  uploader?: boolean;
  /** Uploader port; 0 picks a free one. Default 0. */
  uploaderPort?: number;
  /** Folder for the collector's runs. Default './logs'. */
  logDir?: string;
  /** Run id (folder under logDir). Default a timestamp. */
  runId?: string;
  /** Loopback host for every service. Default 127.0.0.1. */
  host?: string;
  /**
   * Address the dispatcher and the log collector listen on (their HOST), e.g. 0.0.0.0 for workers
   * on other machines; the stack still reaches them at `host`, the uploader stays on `host`.
   * Default `host`.
   */
  listenHost?: string;
  /** Worker TRITON_URL: unset = each worker starts its embedded model server; 'none' = no model server. */
  tritonUrl?: string;
  /** Whether the dispatcher checks labels against the repository (404 for unknown ones). Default true. */
  dispatcherChecksRepository?: boolean;
  /** Producer API keys for the dispatcher and the uploader (API_KEYS). Default none (no producer auth). */
  apiKeys?: readonly string[];
  /** Token the workers present to the dispatcher (WORKER_TOKEN). Default a random one per stack. */
  workerToken?: string;
  /**
   * The dispatcher's TASK_STORE ['memory': benchmark runs reuse task ids, and a kept result would
   * answer a later run's task without running it]. `npm start` passes a SQLite file.
   */
  taskStore?: string;
  /**
   * The dispatcher's KServe v2 gRPC port (GRPC_PORT) [a free port: stacks run side by side in tests
   * and benchmarks, and the dispatcher's own default 8081 would collide]; `false` turns it off.
   */
  dispatcherGrpcPort?: number | false;
  /** Extra env for the dispatcher. */
  dispatcherEnv?: Record<string, string>;
  /** Extra env for every worker. */
  workerEnv?: Record<string, string>;
  /** Extra env for the uploader (e.g. HF_ENDPOINT, HF_TOKEN). */
  uploaderEnv?: Record<string, string>;
  /**
   * Where each child's own output (pino JSON on stderr) goes: 'inherit' (this terminal), 'ignore',
   * or 'files' (`<logDir>/<runId>/<service>.log`, beside the collector's file). Default 'ignore'.
   * Either way the last lines are kept, to explain a failure.
   */
  output?: 'inherit' | 'ignore' | 'files';
  /** Log level of the children. Default 'info'. */
  logLevel?: string;
  /** How long to wait for everything to come up. Default 60 s. */
  readyTimeoutMs?: number;
  /** Aborting it during start-up stops what has started; startStack then rejects. */
  signal?: AbortSignal;
}

/** A service of the stack that exited while the stack was running (not during close). */
export interface ServiceFailure {
  /** `log-collector`, `redis-server`, `dispatcher` (or `dispatcher-<i>`), `uploader` or `worker-<i>`. */
  readonly service: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines of its log, formatted for people. */
  readonly lastLines: string[];
}

/** One dispatcher replica of a running stack. */
export interface StackReplica {
  /** Its REPLICA_ID (`dispatcher-<i>`), or `dispatcher` for a stack of one. */
  readonly id: string;
  readonly url: string;
  /** `host:port` of its KServe v2 gRPC front; undefined when it is off. */
  readonly grpcAddress?: string;
  readonly pid: number;
}

/** A running stack. */
export interface Stack {
  /** The first replica's URL (the only one without `dispatchers`). */
  readonly dispatcherUrl: string;
  /** Every dispatcher replica, in start order. */
  readonly replicas: readonly StackReplica[];
  /** The replicas' REDIS_URL; undefined for a single dispatcher without Redis. */
  readonly redisUrl?: string;
  /** `host:port` of the dispatcher's KServe v2 gRPC front; undefined when it is off. */
  readonly dispatcherGrpcAddress?: string;
  readonly collectorUrl: string;
  /** Set when the stack runs an uploader. */
  readonly uploaderUrl?: string;
  readonly runId: string;
  /** The collector's JSON Lines file for this run. */
  readonly logFile: string;
  readonly workerIds: string[];
  /** Process ids, for CPU accounting. */
  readonly pids: {
    dispatcher: number;
    /** Every replica's pid (the first is `dispatcher`). */
    dispatchers: number[];
    collector: number;
    redis?: number;
    uploader?: number;
    workers: number[];
  };
  /** Resolves when a service exits on its own after start-up (never once `close()` was called). */
  readonly failed: Promise<ServiceFailure>;
  /** Stops every process, workers first, collector last. Safe to call twice. */
  close(): Promise<void>;
}

/** `startStack` failed: a service exited or did not come up in time. */
export class StackStartError extends Error {
  override name = 'StackStartError';
  constructor(
    message: string,
    /** The service that failed. */
    readonly service: string,
    /** The last lines of its log, formatted for people. */
    readonly lastLines: string[],
  ) {
    super(lastLines.length > 0 ? `${message}; its last log lines:\n  ${lastLines.join('\n  ')}` : message);
  }
}

/** Lines of a child's output kept to explain its failure. */
const TAIL_LINES = 12;

/** Launcher env passed through to every child: what a Node process needs, nothing of ours. */
const BASE_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'SYSTEMROOT',
];
/** Also passed to the uploader, which fetches from the hub. */
const PROXY_ENV = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

function childEnv(names: string[], own: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  // onnxruntime-node writes telemetry (/tmp/mat-debug-<pid>.log, ~/.cache/Microsoft/) unless told not to.
  env.ORT_DISABLE_TELEMETRY = process.env.ORT_DISABLE_TELEMETRY ?? '1';
  return { ...env, ...own };
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

/** One pino JSON line as `LEVEL message (error)`; other lines as they are. */
function formatLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof rec !== 'object' || rec === null) return line;
  const levels: Record<number, string> = {
    10: 'TRACE',
    20: 'DEBUG',
    30: 'INFO',
    40: 'WARN',
    50: 'ERROR',
    60: 'FATAL',
  };
  const err = rec.err as { message?: unknown } | undefined;
  const detail = [err?.message, rec.message, rec.error].find((d) => typeof d === 'string');
  const msg = typeof rec.msg === 'string' ? rec.msg : typeof rec.event === 'string' ? rec.event : line;
  return `${levels[rec.level as number] ?? 'LOG'} ${msg}${detail && detail !== msg ? ` (${detail as string})` : ''}`;
}

/** A spawned service: its output is scanned for events and its last lines kept. */
class Service {
  readonly child: ChildProcess;
  readonly tail: string[] = [];
  /** Resolves when stdout and stderr are drained and the process has exited. */
  readonly done: Promise<void>;
  private readonly sink: WriteStream | NodeJS.WriteStream | undefined;
  private readonly waiters = new Map<string, () => void>();
  private readonly seen = new Set<string>();
  private readonly lineWaiters = new Set<{ pattern: RegExp; resolve: () => void }>();

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
    sink: WriteStream | NodeJS.WriteStream | undefined,
    /** A binary to run instead of `node script` (redis-server); then `script` is unused. */
    command?: { file: string; args: string[] },
  ) {
    this.sink = sink;
    // Own process group (detached): a terminal's Ctrl-C or hang-up reaches the launcher only, which
    // stops the children in order. Not unref'd: the launcher waits for them.
    this.child = spawn(command?.file ?? process.execPath, command?.args ?? [script], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const streams = [this.child.stdout!, this.child.stderr!];
    for (const stream of streams) createInterface({ input: stream }).on('line', (line) => this.onLine(line));
    this.done = Promise.all([
      ...streams.map((s) => once(s, 'close').catch(() => undefined)),
      this.exited(),
    ]).then(() => undefined);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  exited(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return once(this.child, 'exit').then(() => undefined);
  }

  private onLine(line: string): void {
    this.tail.push(formatLine(line));
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    if (this.sink && this.sink.writable)
      this.sink.write(this.sink === process.stderr ? `[${this.name}] ${line}\n` : `${line}\n`);
    for (const w of this.lineWaiters) if (w.pattern.test(line)) w.resolve();
    if (!line.startsWith('{')) return;
    try {
      const rec = JSON.parse(line) as { event?: unknown; pid?: unknown };
      if (typeof rec.event === 'string' && rec.pid === this.child.pid) {
        this.seen.add(rec.event);
        this.waiters.get(rec.event)?.();
      }
    } catch {
      // not JSON after all
    }
  }

  /** Resolves when this very process logs `event`; rejects if it exits first or at `deadline`. */
  async waitForEvent(event: string, deadline: number): Promise<void> {
    if (this.seen.has(event)) return;
    const logged = new Promise<void>((resolve) => this.waiters.set(event, resolve));
    try {
      await this.orFail(logged, deadline, `logged ${event}`);
    } finally {
      this.waiters.delete(event);
    }
  }

  /** Resolves when a line of its output matches `pattern` (a program that does not log pino JSON). */
  async waitForLine(pattern: RegExp, deadline: number, what: string): Promise<void> {
    let waiter: { pattern: RegExp; resolve: () => void } | undefined;
    const matched = new Promise<void>((resolve) => {
      waiter = { pattern, resolve };
      this.lineWaiters.add(waiter);
    });
    try {
      await this.orFail(matched, deadline, what);
    } finally {
      this.lineWaiters.delete(waiter!);
    }
  }

  /** `work`, unless this process exits first (StackStartError with its last lines) or time runs out. */
  async orFail<T>(work: Promise<T>, deadline: number, what = 'was ready'): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const exit = this.exited().then(async () => {
      await this.done; // its last lines explain why
      const how = this.child.signalCode ? `signal ${this.child.signalCode}` : `code ${this.child.exitCode}`;
      throw new StackStartError(`${this.name} exited with ${how} before it ${what}`, this.name, [
        ...this.tail,
      ]);
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StackStartError(`${this.name} was not ready in time`, this.name, [...this.tail])),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([work, exit, timeout]);
    } finally {
      clearTimeout(timer);
      exit.catch(() => undefined);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when its output is drained. */
  async stop(graceMs: number): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited();
      clearTimeout(timer);
    }
    await this.done;
  }
}

function failureOf(s: Service): ServiceFailure {
  return { service: s.name, code: s.child.exitCode, signal: s.child.signalCode, lastLines: [...s.tail] };
}

/** Polls `check` every 100 ms until it returns true. */
async function poll(check: () => Promise<boolean>, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts collector, dispatcher (uploader) and workers; resolves when every worker has registered. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const host = options.host ?? '127.0.0.1';
  const listenHost = options.listenHost ?? host;
  const workers = options.workers ?? 2;
  const replicaCount = options.dispatchers ?? 1;
  if (!Number.isInteger(replicaCount) || replicaCount < 1)
    throw new TypeError(`dispatchers must be an integer >= 1, got ${replicaCount}`);
  // Before anything starts: a missing redis-server is the user's to fix, not a half-started stack.
  const redisBinary = replicaCount > 1 && !options.redisUrl ? redisServerBinary() : undefined;
  const runId = options.runId ?? new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = options.logDir ?? './logs';
  const runDir = join(logDir, runId);
  const logLevel = options.logLevel ?? 'info';
  // Above info (the throughput benchmark runs at warn) the listening events are not logged: then
  // readiness rests on the HTTP probes, and a child that could not bind still fails by exiting.
  const readyEventsLogged = ['trace', 'debug', 'info'].includes(logLevel);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  const apiKeys = options.apiKeys ?? [];
  const workerToken = options.workerToken ?? randomBytes(24).toString('base64url');
  // The launcher's own probes authenticate like a producer.
  const authHeaders: Record<string, string> = apiKeys[0] ? { authorization: `Bearer ${apiKeys[0]}` } : {};
  if (options.output === 'files') mkdirSync(runDir, { recursive: true });

  const services: Service[] = [];
  const files: WriteStream[] = [];
  const start = (
    name: string,
    script: string,
    env: Record<string, string>,
    baseEnv = BASE_ENV,
    command?: { file: string; args: string[] },
  ): Service => {
    if (closed) throw new Error('the stack start was aborted');
    let sink: WriteStream | NodeJS.WriteStream | undefined;
    if (options.output === 'files') {
      const file = createWriteStream(join(runDir, `${name}.log`), { flags: 'a' });
      files.push(file);
      sink = file;
    } else if (options.output === 'inherit') {
      sink = process.stderr;
    }
    const service = new Service(
      name,
      script,
      childEnv(baseEnv, { LOG_LEVEL: logLevel, ...env }),
      sink,
      command,
    );
    services.push(service);
    // Before start-up is done, an exit fails startStack instead (StackStartError).
    service.child.once('exit', () => {
      if (closed || !up) return;
      void service.done.then(() => reportFailure(failureOf(service)));
    });
    return service;
  };

  let up = false;
  let closed: Promise<void> | undefined;
  let reportFailure: (failure: ServiceFailure) => void = () => {};
  const failed = new Promise<ServiceFailure>((resolve) => (reportFailure = resolve));
  // If this process exits without close() (a crash, process.exit), take the children down with it.
  const killChildren = (): void => {
    for (const s of services) if (s.running) s.child.kill('SIGTERM');
  };
  process.on('exit', killChildren);
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const workerServices = services.filter((s) => s.name.startsWith('worker-'));
      await Promise.all(workerServices.map((w) => w.stop(15_000)));
      // The rest in reverse start order: dispatchers, uploader, redis-server, collector last.
      for (const s of services.filter((x) => !workerServices.includes(x)).reverse()) await s.stop(10_000);
      await Promise.all(files.map((f) => new Promise((resolve) => f.end(resolve))));
      process.off('exit', killChildren);
    })();
    return closed;
  };

  const onAbort = (): void => void close();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    options.signal?.throwIfAborted();
    const collectorPort = options.collectorPort || (await freePort(host));
    const collectorUrl = `http://${host}:${collectorPort}`;
    const collector = start('log-collector', join(packageDist('log-collector'), 'cli.js'), {
      PORT: String(collectorPort),
      HOST: listenHost,
      LOG_DIR: logDir,
      RUN_ID: runId,
    });
    if (readyEventsLogged) await collector.waitForEvent('collector_started', deadline);
    await collector.orFail(
      poll(
        async () => (await fetch(`${collectorUrl}/health`)).ok,
        () => !!closed,
      ),
      deadline,
    );

    let redisUrl = options.redisUrl;
    let redis: Service | undefined;
    if (redisBinary) {
      const redisPort = await freePort(host);
      const redisDir = resolve(runDir, 'redis');
      mkdirSync(redisDir, { recursive: true });
      redis = start('redis-server', '', {}, BASE_ENV, {
        file: redisBinary,
        // Loopback only, no config file; the append-only file keeps accepted tasks across a restart.
        args: [
          '--port',
          String(redisPort),
          '--bind',
          host,
          '--dir',
          redisDir,
          '--save',
          '',
          '--appendonly',
          'yes',
          '--daemonize',
          'no',
        ],
      });
      await redis.waitForLine(/Ready to accept connections/, deadline, 'accepted connections');
      redisUrl = `redis://${host}:${redisPort}`;
    }

    const replicaPorts: { id: string; port: number; grpc: number | false }[] = [];
    for (let i = 0; i < replicaCount; i++) {
      const port = options.dispatcherPort ? options.dispatcherPort + 10 * i : await freePort(host);
      const grpc =
        options.dispatcherGrpcPort === false
          ? false
          : options.dispatcherGrpcPort
            ? options.dispatcherGrpcPort + 10 * i
            : await freePort(host);
      replicaPorts.push({ id: replicaCount === 1 ? 'dispatcher' : `dispatcher-${i + 1}`, port, grpc });
    }
    const dispatcherUrl = `http://${host}:${replicaPorts[0]!.port}`;
    const grpcPort = replicaPorts[0]!.grpc;
    let uploaderUrl: string | undefined;
    let uploader: Service | undefined;
    if (options.uploader) {
      const uploaderPort = options.uploaderPort || (await freePort(host));
      uploaderUrl = `http://${host}:${uploaderPort}`;
      uploader = start(
        'uploader',
        join(packageDist('uploader'), 'cli.js'),
        {
          PORT: String(uploaderPort),
          HOST: host,
          MODEL_REPOSITORY: options.modelRepository,
          LOG_COLLECTOR_URL: collectorUrl,
          ...(apiKeys.length > 0 ? { API_KEYS: apiKeys.join(',') } : {}),
          ...options.uploaderEnv,
        },
        [...BASE_ENV, ...PROXY_ENV],
      );
      if (readyEventsLogged) await uploader.waitForEvent('uploader_listening', deadline);
      await uploader.orFail(
        poll(
          async () => (await fetch(`${uploaderUrl}/health`)).ok,
          () => !!closed,
        ),
        deadline,
      );
    }

    const dispatchers: { service: Service; replica: StackReplica }[] = [];
    for (const r of replicaPorts) {
      const url = `http://${host}:${r.port}`;
      const service = start(r.id, join(packageDist('dispatcher'), 'cli.js'), {
        PORT: String(r.port),
        HOST: listenHost,
        ROUTING_POLICY: options.policy ?? 'affinity',
        // Replicas share the Redis store (the dispatcher insists on it with REDIS_URL).
        TASK_STORE: redisUrl ? redisUrl : (options.taskStore ?? 'memory'),
        GRPC_PORT: r.grpc === false ? 'off' : String(r.grpc),
        ...(redisUrl ? { REDIS_URL: redisUrl, REPLICA_ID: r.id } : {}),
        ...(options.dispatcherChecksRepository === false
          ? {}
          : { MODEL_REPOSITORY: options.modelRepository }),
        LOG_COLLECTOR_URL: collectorUrl,
        WORKER_TOKEN: workerToken,
        ...(apiKeys.length > 0 ? { API_KEYS: apiKeys.join(',') } : {}),
        ...(uploaderUrl ? { UPLOADER_URL: uploaderUrl } : {}),
        ...options.dispatcherEnv,
      });
      if (readyEventsLogged) await service.waitForEvent('dispatcher_listening', deadline);
      await service.orFail(
        poll(
          async () => (await fetch(`${url}/health`)).ok,
          () => !!closed,
        ),
        deadline,
      );
      dispatchers.push({
        service,
        replica: {
          id: r.id,
          url,
          ...(r.grpc === false ? {} : { grpcAddress: `${host}:${r.grpc}` }),
          pid: service.child.pid ?? 0,
        },
      });
    }
    const replicaUrls = dispatchers.map((d) => d.replica.url);

    const workerIds = Array.from({ length: workers }, (_, i) => `worker-${i + 1}`);
    const workerServices = workerIds.map((id) =>
      start(id, join(packageDist('worker'), 'cli.js'), {
        // Several replicas: the worker links to every one (only the leader's orders count).
        ...(replicaUrls.length > 1
          ? { DISPATCHER_URLS: replicaUrls.map((u) => u.replace(/^http/, 'ws')).join(',') }
          : { DISPATCHER_URL: dispatcherUrl.replace(/^http/, 'ws') }),
        WORKER_ID: id,
        WORKER_MAX_LABELS: String(options.labelCapacity ?? 2),
        WORKER_SLOTS: String(options.slots ?? 1),
        ...(options.memoryBudgetBytes
          ? { WORKER_MEMORY_BUDGET_BYTES: String(options.memoryBudgetBytes) }
          : {}),
        MODEL_REPOSITORY: options.modelRepository,
        LOG_COLLECTOR_URL: collectorUrl,
        WORKER_TOKEN: workerToken,
        ...(options.tritonUrl ? { TRITON_URL: options.tritonUrl } : {}),
        ...options.workerEnv,
      }),
    );
    let registered = false;
    // Up when every replica lists every worker: a standby's picture is warm before the user starts.
    const allRegistered = poll(
      async () => {
        for (const url of replicaUrls) {
          const res = await fetch(`${url}/workers`, { headers: authHeaders });
          const list = (await res.json()) as { id: string }[];
          if (!workerIds.every((id) => list.some((w) => w.id === id))) return false;
        }
        return true;
      },
      () => registered || !!closed,
    );
    // Every worker (and the dispatcher) can fail the wait: the first to exit explains why.
    try {
      await Promise.race([
        ...workerServices.map((w) => w.orFail(allRegistered, deadline, 'registered')),
        ...dispatchers.map((d) => d.service.orFail(allRegistered, deadline)),
        ...(redis ? [redis.orFail(allRegistered, deadline)] : []),
      ]);
    } finally {
      registered = true;
    }
    // Aborted (options.signal) while waiting: the polls ended without the stack being up.
    if (closed) throw new Error('the stack start was aborted');

    for (const s of services) {
      // One that exited in the last instant of start-up: report it too.
      if (!s.running) void s.done.then(() => reportFailure(failureOf(s)));
    }
    up = true;

    return {
      dispatcherUrl,
      replicas: dispatchers.map((d) => d.replica),
      ...(redisUrl ? { redisUrl } : {}),
      ...(grpcPort === false ? {} : { dispatcherGrpcAddress: `${host}:${grpcPort}` }),
      collectorUrl,
      ...(uploaderUrl ? { uploaderUrl } : {}),
      runId,
      logFile: join(runDir, 'collector.log'),
      workerIds,
      pids: {
        dispatcher: dispatchers[0]!.replica.pid,
        dispatchers: dispatchers.map((d) => d.replica.pid),
        collector: collector.child.pid ?? 0,
        ...(redis ? { redis: redis.child.pid ?? 0 } : {}),
        ...(uploader ? { uploader: uploader.child.pid ?? 0 } : {}),
        workers: workerServices.map((w) => w.child.pid ?? 0),
      },
      failed,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
