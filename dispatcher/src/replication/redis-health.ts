/**
 * Whether the shared Redis (lease, task stream, task store) can be reached, for replicated mode
 * (issue 13), and the client settings that keep an outage short and quiet:
 *
 *   a command ─ answered ─────────────────────────────> succeeded() ─ was down? ─> info, once
 *             └ connection lost / no answer in 1 s ───> failed()    ─ was up?   ─> warn, once
 *
 *   - (task-store/redis-client.ts) every command fails within REDIS_COMMAND_TIMEOUT_MS (a frozen server keeps the TCP connection
 *     open, so without a timeout a command waits forever); the offline queue (commands issued while
 *     reconnecting) is bounded by the same timeout and by one reconnect attempt;
 *   - reconnects are tried every 50 ms, 100 ms, ... up to REDIS_RETRY_MAX_MS, forever: when Redis
 *     is back, the replicas are within half a second of noticing;
 *   - the log: one warning when the outage starts and one info line when it ends; every other log
 *     record of the outage that carries a connection error (`err`) is written at debug level
 *     (see {@link RedisHealth.quiet}).
 *
 * The lease loop is the probe: a standby polls every 250 ms at most, a leader renews every third
 * of the lease, so `reachable` is at most about a second out of date.
 */
import type { Logger } from 'pino';
import { isConnectivityError } from '../task-store/redis-client.js';

export { isConnectivityError };

/** The shared Redis's reachability as this replica sees it. */
export class RedisHealth {
  private up = true;
  private downSince = 0;
  private outageCount = 0;

  constructor(private readonly logger: Logger) {}

  /** False from the first failed command of an outage until a command succeeds again. */
  get reachable(): boolean {
    return this.up;
  }

  /** Outages seen since start. */
  get outages(): number {
    return this.outageCount;
  }

  /** A command failed: the first failure of an outage is the outage's one warning. */
  failed(err: unknown, source: string): void {
    if (!isConnectivityError(err) || !this.up) return;
    this.up = false;
    this.downSince = Date.now();
    this.outageCount++;
    this.logger.warn(
      { event: 'shared_store_unreachable', source, message: (err as Error).message },
      'the shared Redis cannot be reached: not leading, producers get 503 task_store_unavailable until it is back',
    );
  }

  /** A command succeeded: ends an outage. */
  succeeded(): void {
    if (this.up) return;
    this.up = true;
    this.logger.info(
      { event: 'shared_store_reachable', outage_ms: Date.now() - this.downSince },
      'the shared Redis is reachable again',
    );
  }

  /**
   * `logger`, except that a warn or error record whose `err` is a connection error is written at
   * debug level (and marks the outage): one warning per outage, not one per command.
   */
  quiet(logger: Logger): Logger {
    const failed = (err: unknown, source: string) => this.failed(err, source);
    const quieted = Object.create(logger) as Logger;
    for (const level of ['warn', 'error'] as const) {
      const write = logger[level];
      quieted[level] = function (this: Logger, ...args: unknown[]) {
        const first = args[0] as { err?: unknown } | undefined;
        if (typeof first === 'object' && first !== null && isConnectivityError(first.err)) {
          failed(first.err, String((first as { event?: unknown }).event ?? level));
          return (this.debug as (...a: unknown[]) => void)(...args);
        }
        return (write as (...a: unknown[]) => void).apply(this, args);
      } as Logger['warn'];
    }
    return quieted;
  }
}
