import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { errorMessage, withTimeout } from './errors.js';

/**
 * Whether the model server answers, probed on a timer (`GET /v2/health/ready`): a server that
 * crashed, hangs or is frozen (SIGSTOP) is noticed within `failures` x `intervalMs` (+ the probe
 * timeout), instead of when tasks time out on it. The connection reports an unhealthy server to the
 * dispatcher (heartbeat `draining`, so it routes elsewhere) and refuses label tasks with
 * `model_server_unavailable`; once probes pass again the worker takes tasks again.
 *
 *   healthy ── `failures` probes in a row fail ──> unhealthy ('change', false)
 *      ^                                               │
 *      └──────────── one probe passes ('change', true) ┘
 */

/** Options of {@link ModelServerWatch}. */
export interface ModelServerWatchOptions {
  /** The probe: resolves true when the server is ready (e.g. `TritonClient.isReady`). */
  readonly probe: () => Promise<boolean>;
  readonly logger: Logger;
  /** Time between probes (ms). Default 2000. */
  readonly intervalMs?: number;
  /** A probe that takes longer fails (ms). Default 2000. */
  readonly timeoutMs?: number;
  /** Failed probes in a row that make the server unhealthy. Default 2. */
  readonly failures?: number;
}

/** Emits `change` (healthy: boolean) when the model server's health flips. */
export class ModelServerWatch extends EventEmitter<{ change: [healthy: boolean] }> {
  private readonly o: Required<ModelServerWatchOptions>;
  private timer: NodeJS.Timeout | undefined;
  private failed = 0;
  private probing = false;
  private up = true;

  constructor(options: ModelServerWatchOptions) {
    super();
    this.o = { intervalMs: 2000, timeoutMs: 2000, failures: 2, ...options };
  }

  /** Whether the model server answered its last probes (true until `failures` probes failed). */
  get healthy(): boolean {
    return this.up;
  }

  /** Starts probing. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Stops probing. Safe to call twice. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One probe now (the timer calls it; tests may too). Never rejects. */
  async check(): Promise<void> {
    if (this.probing) return; // a hanging probe is still running: it will fail by its timeout
    this.probing = true;
    let ok: boolean;
    let reason = '';
    try {
      ok = await withTimeout('model server health probe', this.o.timeoutMs, () => this.o.probe());
      if (!ok) reason = 'not ready';
    } catch (err) {
      ok = false;
      reason = errorMessage(err);
    } finally {
      this.probing = false;
    }
    if (ok) return this.set(true, 'probe passed');
    this.failed++;
    if (this.failed >= this.o.failures) this.set(false, reason);
  }

  /**
   * Sets the health from a fact known without a probe (the embedded server's child exited, or it
   * restarted and answered): emits `change` when it flips.
   */
  set(healthy: boolean, reason: string): void {
    if (healthy) this.failed = 0;
    if (this.up === healthy) return;
    this.up = healthy;
    if (healthy) this.o.logger.info({ event: 'model_server_healthy', reason }, 'model server answers again');
    else
      this.o.logger.warn(
        { event: 'model_server_unhealthy', failed_probes: this.failed, reason },
        'model server does not answer; taking no label tasks until it does',
      );
    this.emit('change', healthy);
  }
}
