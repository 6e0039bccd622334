/**
 * Lets a log line through at most `burst` times per `intervalMs` for each key, and says how many
 * were held back, so a flood (a worker hammering the endpoint with a bad token) costs a few lines,
 * not one per attempt. Time is passed in.
 */

/** Options of {@link LogLimiter}. */
export interface LogLimiterOptions {
  /** Length of a window (ms). Default 10000. */
  readonly intervalMs?: number;
  /** Lines let through per key and window. Default 5. */
  readonly burst?: number;
  /** Most keys remembered; the oldest window is dropped beyond it. Default 1000. */
  readonly maxKeys?: number;
}

interface Window {
  start: number;
  passed: number;
  held: number;
}

/** Per-key log rate limit; see the file header. */
export class LogLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;

  constructor(options: LogLimiterOptions = {}) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.burst = options.burst ?? 5;
    this.maxKeys = options.maxKeys ?? 1000;
  }

  /**
   * Whether a line for `key` may be logged at `now`: undefined when it is held back, else the
   * number of lines for that key held back since the last one let through.
   */
  take(key: string, now: number): number | undefined {
    let w = this.windows.get(key);
    if (w && now - w.start >= this.intervalMs) {
      const held = w.held;
      w.start = now;
      w.passed = 1;
      w.held = 0;
      return held;
    }
    if (!w) {
      if (this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
      w = { start: now, passed: 0, held: 0 };
      this.windows.set(key, w);
    }
    if (w.passed >= this.burst) {
      w.held++;
      return undefined;
    }
    w.passed++;
    return 0;
  }
}
