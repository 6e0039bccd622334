import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { defaultModelServerLogger } from './server.js';

/**
 * The worker's own model server as a child process: `node <dist>/model-server/cli.js --port 0`.
 * A child, not an in-process server, so a crash in ONNX Runtime's native code takes down the
 * model server only, and the worker sees it, restarts it and reports its labels as gone.
 *
 *   spawn ──ready line {"url"}──▶ poll /v2/health/ready ──200──▶ running
 *     ▲                                                              │ unexpected exit
 *     └────────────── backoff (200 ms doubling to 10 s) ◀────────────┘
 *   emits 'restart' {url, pid} once a replacement is ready (it has nothing loaded)
 *   close(): SIGTERM, SIGKILL after the grace period; no restart after close
 */

/** Options of `startEmbeddedModelServer`. */
export interface EmbeddedModelServerOptions {
  /** Model repository folder handed to the child. */
  repository: string;
  /** Logger; the child's log lines are forwarded to it. Default: pino at LOG_LEVEL to stderr. */
  logger?: Logger;
  /** The model server CLI to run. Default: `model-server/cli.js` of this package's dist. */
  cliPath?: string;
  /** Extra environment for the child (LOG_LEVEL etc.). Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /**
   * Start the child's KServe v2 gRPC front too, on a free loopback port (`grpcAddress`). Default
   * false; the child then has no gRPC front even when this process's environment sets GRPC_PORT.
   */
  grpc?: boolean;
  /** Time allowed from spawn to ready. Default 30 000 ms. */
  readyTimeoutMs?: number;
  /** First restart delay; doubles up to `maxRestartDelayMs`. Default 200 ms. */
  restartDelayMs?: number;
  /** Largest restart delay. Default 10 000 ms. */
  maxRestartDelayMs?: number;
  /** Time between SIGTERM and SIGKILL on close. Default 5 000 ms. */
  closeGraceMs?: number;
}

/** A running embedded model server. Events: 'restart' ({url, pid}) after a replacement is ready, 'exit' ({code, signal}) when a child dies unexpectedly. */
export interface EmbeddedModelServer extends EventEmitter {
  /** Base URL of the current child; changes after a restart. */
  readonly url: string;
  /** `host:port` of the current child's gRPC front (with `grpc: true`); changes after a restart. */
  readonly grpcAddress: string | undefined;
  /** Pid of the current child, undefined while none runs. */
  readonly pid: number | undefined;
  /** Stops the child (SIGTERM, then SIGKILL) and stops restarting. Safe to call twice. */
  close(): Promise<void>;
}

const DEFAULTS = {
  readyTimeoutMs: 30_000,
  restartDelayMs: 200,
  maxRestartDelayMs: 10_000,
  closeGraceMs: 5_000,
};

/** A child that stayed up this long resets the restart backoff. */
const STABLE_MS = 30_000;

/** `dist/model-server/cli.js` beside this file; from the TypeScript sources (tests), the built one. */
export function defaultModelServerCliPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    return here.replace(/([\\/])src([\\/])model-server([\\/])embedded\.ts$/, '$1dist$2model-server$3cli.js');
  }
  return fileURLToPath(new URL('./cli.js', import.meta.url));
}

const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

class EmbeddedServer extends EventEmitter implements EmbeddedModelServer {
  private child: ChildProcess | undefined;
  private currentUrl = '';
  private currentGrpcAddress: string | undefined;
  private closing: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelay: number;
  private readonly logger: Logger;
  private readonly cliPath: string;
  private readonly opts: typeof DEFAULTS;

  constructor(private readonly options: EmbeddedModelServerOptions) {
    super();
    this.logger = options.logger ?? defaultModelServerLogger();
    this.cliPath = options.cliPath ?? defaultModelServerCliPath();
    this.opts = {
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs,
      restartDelayMs: options.restartDelayMs ?? DEFAULTS.restartDelayMs,
      maxRestartDelayMs: options.maxRestartDelayMs ?? DEFAULTS.maxRestartDelayMs,
      closeGraceMs: options.closeGraceMs ?? DEFAULTS.closeGraceMs,
    };
    this.restartDelay = this.opts.restartDelayMs;
  }

  get url(): string {
    return this.currentUrl;
  }

  get grpcAddress(): string | undefined {
    return this.currentGrpcAddress;
  }

  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  /** Spawns a child and resolves once it answers ready; rejects (child killed) otherwise. */
  async spawnChild(): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        this.cliPath,
        '--repository',
        this.options.repository,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--exit-with-parent',
      ],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        // GRPC_PORT is ours to set: an inherited one (the dispatcher's, say) would clash.
        env: { ...process.env, GRPC_PORT: this.options.grpc ? '0' : '', ...this.options.env },
      },
    );
    this.child = child;
    const startedAt = Date.now();
    const log = this.logger.child({ model_server_pid: child.pid });

    // stderr carries the child's pino JSON logs: re-emit them at their level.
    createInterface({ input: child.stderr! }).on('line', (line) => {
      let rec: Record<string, unknown> | undefined;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // Not JSON (a native crash message, say).
      }
      if (rec && typeof rec === 'object' && typeof rec.level === 'number') {
        const { level, time: _time, pid: _pid, hostname: _hostname, msg, ...fields } = rec;
        const method = PINO_LEVELS[level as number] ?? 'info';
        log[method](fields, typeof msg === 'string' ? msg : undefined);
      } else {
        log.warn({ event: 'model_server_stderr', line });
      }
    });
    child.stdin!.on('error', () => undefined);

    const readyLine = new Promise<{ url: string; grpcAddress?: string }>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      let found = false;
      lines.on('line', (line) => {
        if (!found) {
          try {
            const parsed = JSON.parse(line) as { url?: unknown; grpc_address?: unknown };
            if (typeof parsed.url === 'string') {
              found = true;
              resolve({
                url: parsed.url,
                ...(typeof parsed.grpc_address === 'string' ? { grpcAddress: parsed.grpc_address } : {}),
              });
              return;
            }
          } catch {
            // Fall through: an ordinary output line.
          }
        }
        log.info({ event: 'model_server_stdout', line });
      });
      child.once('exit', (code, signal) => {
        if (!found)
          reject(new Error(`model server exited before it was ready (code ${code}, signal ${signal})`));
      });
      child.once('error', (err) => reject(err));
    });

    // A late rejection (after the deadline won) must not go unhandled.
    readyLine.catch(() => undefined);
    child.on('error', (err) => log.error({ event: 'model_server_spawn_error', err }));
    child.once('exit', (code, signal) => this.onChildExit(child, code, signal, startedAt));

    try {
      const { url, grpcAddress } = await withDeadline(
        readyLine,
        this.opts.readyTimeoutMs,
        'model server did not print its ready line',
      );
      if (this.options.grpc && !grpcAddress) throw new Error('model server started without its gRPC front');
      await this.waitReady(url, child, startedAt);
      this.currentUrl = url;
      this.currentGrpcAddress = grpcAddress;
      log.info({
        event: 'model_server_started',
        url,
        ...(grpcAddress ? { grpc_address: grpcAddress } : {}),
        duration_ms: Date.now() - startedAt,
      });
    } catch (err) {
      // Detach first so its exit is not taken for a crash of a running server.
      if (this.child === child) this.child = undefined;
      await this.kill(child);
      throw err;
    }
  }

  private async waitReady(url: string, child: ChildProcess, startedAt: number): Promise<void> {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error('model server exited before it was ready');
      if (Date.now() - startedAt > this.opts.readyTimeoutMs)
        throw new Error('model server did not become ready in time');
      try {
        const res = await fetch(`${url}/v2/health/ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
  }

  private onChildExit(
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    startedAt: number,
  ): void {
    if (child !== this.child || this.closing) return;
    this.child = undefined;
    this.logger.warn({ event: 'model_server_exited', code, signal, pid: child.pid });
    this.emit('exit', { code, signal });
    if (Date.now() - startedAt > STABLE_MS) this.restartDelay = this.opts.restartDelayMs;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closing || this.restartTimer) return;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, this.opts.maxRestartDelayMs);
    this.logger.info({ event: 'model_server_restart_scheduled', delay_ms: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closing) return;
      this.spawnChild().then(
        () => {
          if (this.closing) return;
          this.emit('restart', { url: this.currentUrl, pid: this.pid });
        },
        (err: unknown) => {
          this.logger.error({ event: 'model_server_restart_failed', err });
          this.scheduleRestart();
        },
      );
    }, delay);
    this.restartTimer.unref();
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves when the child is gone. */
  private async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.closeGraceMs);
    timer.unref();
    await exited;
    clearTimeout(timer);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      const child = this.child;
      if (child) await this.kill(child);
      this.logger.info({ event: 'model_server_stopped' });
    })();
    return this.closing;
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Starts the embedded model server as a child process on a free loopback port and resolves once
 * it answers `/v2/health/ready`. Restarts it with backoff if it dies, emitting 'restart'.
 */
export async function startEmbeddedModelServer(
  options: EmbeddedModelServerOptions,
): Promise<EmbeddedModelServer> {
  const server = new EmbeddedServer(options);
  await server.spawnChild();
  return server;
}
