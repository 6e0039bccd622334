import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/** Options of {@link LogFileWriter.open}. */
export interface LogFileWriterOptions {
  /** Most records held in memory (buffered + being written) before `tryAppend` refuses. */
  maxBufferRecords: number;
  /** Longest a record waits in memory before it is written. */
  flushIntervalMs: number;
  /** Buffered bytes that trigger a write at once instead of waiting for the interval. */
  highWaterBytes: number;
  logger: Logger;
}

/** Largest single append, so one slow disk write never holds a huge string. */
const MAX_CHUNK_BYTES = 1 << 20;
const RETRY_MS = 500;

/**
 * A bounded in-memory buffer of JSON lines in front of one append-only file.
 *
 *   tryAppend(lines) --> pending[] --(interval or high water)--> drain loop --> fh.appendFile(chunk)
 *                        (bounded)                               (one at a time: writes serialised)
 *
 * Appends go through one file descriptor opened with O_APPEND, and only one write is ever in flight,
 * so lines land in the order they were accepted. A failed write keeps its lines at the front and is
 * retried; meanwhile the buffer fills and the collector answers 503, which pushes back on senders.
 */
export class LogFileWriter {
  private readonly pending: string[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private written = 0;
  private draining: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastError: Error | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly fh: FileHandle,
    private readonly options: LogFileWriterOptions,
  ) {}

  /** Creates the file's folder and opens the file for appending. */
  static async open(file: string, options: LogFileWriterOptions): Promise<LogFileWriter> {
    await mkdir(dirname(file), { recursive: true });
    const fh = await open(file, 'a');
    return new LogFileWriter(fh, options);
  }

  /** Records held in memory: waiting plus being written. */
  get buffered(): number {
    return this.pending.length + this.writing;
  }

  /** Records appended to the file so far. */
  get recordsWritten(): number {
    return this.written;
  }

  /** True when no more records fit. */
  get full(): boolean {
    return this.buffered >= this.options.maxBufferRecords;
  }

  /** Buffers all of `lines` (without newlines), or none of them and returns false when they do not fit. */
  tryAppend(lines: readonly string[]): boolean {
    if (this.closing || this.buffered + lines.length > this.options.maxBufferRecords) return false;
    for (const line of lines) {
      this.pending.push(line);
      this.pendingBytes += line.length + 1;
    }
    if (this.pendingBytes >= this.options.highWaterBytes) void this.kick();
    else this.arm(this.options.flushIntervalMs);
    return true;
  }

  /** Writes everything buffered now; rejects if the file cannot be written. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.draining) {
      this.lastError = null;
      await this.kick();
      if (this.lastError) throw this.lastError;
    }
  }

  /** Stops accepting, writes what is buffered and closes the file. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.disarm();
      try {
        await this.flush();
      } catch (err) {
        this.options.logger.error(
          { event: 'collector_records_lost', records: this.buffered, err },
          'could not write buffered records before closing',
        );
      }
      this.disarm();
      await this.fh.close();
    })();
    return this.closing;
  }

  private arm(delayMs: number): void {
    if (this.timer || this.draining) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.kick();
    }, delayMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Starts the drain loop unless it runs already; resolves when it stops. */
  private kick(): Promise<void> {
    this.disarm();
    this.draining ??= this.drain();
    return this.draining;
  }

  private async drain(): Promise<void> {
    // Yield once so `draining` is assigned before the loop can finish and clear it.
    await Promise.resolve();
    while (this.pending.length > 0) {
      let count = 0;
      let bytes = 0;
      while (count < this.pending.length && (count === 0 || bytes < MAX_CHUNK_BYTES)) {
        bytes += (this.pending[count] as string).length + 1;
        count++;
      }
      const lines = this.pending.splice(0, count);
      this.pendingBytes -= bytes;
      this.writing = count;
      try {
        await this.fh.appendFile(lines.join('\n') + '\n');
        this.written += count;
        this.writing = 0;
      } catch (err) {
        // Put them back in front so order holds; retry later unless we are closing.
        this.pending.unshift(...lines);
        this.pendingBytes += bytes;
        this.writing = 0;
        this.lastError = err as Error;
        this.options.logger.error(
          { event: 'collector_write_failed', records: count, err },
          'appending to the log file failed',
        );
        this.draining = null;
        if (!this.closing) this.arm(RETRY_MS);
        return;
      }
    }
    // Cleared in the same synchronous step as the empty check: a later tryAppend arms a new timer.
    this.draining = null;
  }
}
