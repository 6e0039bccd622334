/**
 * Progress lines for long benchmark runs, on stderr so stdout stays the report:
 *
 *   benchmark 12.4 s | affinity: sending requests 57/150 (0 failed) | phase 4.1 s
 *
 * One line at once when a phase starts, then one every `intervalMs` until `stop()`,
 * whatever the terminal (a progress bar draws nothing when stderr is not a TTY, which left CI logs
 * and piped runs silent for minutes).
 */

/** What a progress line shows. */
export interface ProgressState {
  /** Seconds since the run started. */
  elapsedS: number;
  /** Seconds since the current phase started. */
  phaseS: number;
  /** e.g. "calibrating load time", "affinity: sending requests". */
  phase: string;
  /** Requests done and planned in this phase, when it sends requests. */
  done?: number;
  total?: number;
  failed?: number;
}

/** One progress line (no newline). */
export function formatProgressLine(s: ProgressState): string {
  const counts =
    s.total === undefined ? '' : ` ${s.done ?? 0}/${s.total}${s.failed ? ` (${s.failed} failed)` : ''}`;
  return `benchmark ${s.elapsedS.toFixed(1)} s | ${s.phase}${counts} | phase ${s.phaseS.toFixed(1)} s`;
}

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** Where lines go [process.stderr]. */
  stream?: { write(text: string): unknown };
  /** Time between periodic lines, ms [1500: under 2 s even when a busy machine delays the timer]. */
  intervalMs?: number;
  /** Print nothing (`--quiet`) [false]. */
  quiet?: boolean;
  /** Clock, ms [performance.now]. */
  now?: () => number;
}

/** Prints progress lines for a run's phases; `stop()` is safe to call twice. */
export class ProgressReporter {
  private readonly stream: { write(text: string): unknown };
  private readonly now: () => number;
  private readonly started: number;
  private phaseStarted: number;
  private state: Omit<ProgressState, 'elapsedS' | 'phaseS'> = { phase: 'starting' };
  private readonly timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    this.phaseStarted = this.started;
    const intervalMs = options.intervalMs ?? 1500;
    if (!options.quiet) this.timer = setInterval(() => this.print(), intervalMs).unref();
  }

  /** Starts a phase and prints its first line at once; `total` when it counts requests. */
  phase(name: string, total?: number): void {
    this.phaseStarted = this.now();
    this.state = total === undefined ? { phase: name } : { phase: name, done: 0, total, failed: 0 };
    this.print();
  }

  /** Counts one request of the current phase done (failed or not). */
  requestDone(failed: boolean): void {
    this.state.done = (this.state.done ?? 0) + 1;
    if (failed) this.state.failed = (this.state.failed ?? 0) + 1;
  }

  /** Stops the periodic lines. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  private print(): void {
    if (!this.timer || this.stopped) return; // quiet, or stopped
    const now = this.now();
    this.stream.write(
      `${formatProgressLine({
        ...this.state,
        elapsedS: (now - this.started) / 1000,
        phaseS: (now - this.phaseStarted) / 1000,
      })}\n`,
    );
  }
}
