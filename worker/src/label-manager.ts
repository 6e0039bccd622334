import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { errorMessage, modelServerFailure, TaskError } from './errors.js';
import type { StaleModelCheck } from './model-stamp.js';
import { TritonError, type TritonClient } from './triton-client.js';

/**
 * What the model server really holds, most recently used first, and the only code that loads or
 * unloads models. The dispatcher decides which label to evict; this class carries the order out,
 * measures it, and reports every change as an event (which the connection forwards as LabelEvent).
 *
 * Loads and unloads of the same label are serialised (one lock per label); different labels load
 * in parallel. A label counts against capacity (and, under a memory budget, with its footprint)
 * from the moment its load starts.
 *
 *   ensureLoaded(l) ─ loaded? ── yes ─ files changed since its load (staleCheck)? ── no ─> touch, pin, hit
 *                      │                                    └ yes ─> POST load (reload) ─> 'loaded' ─> pin, miss
 *                      │ no
 *                      ├─ full (count, or budget - used < footprint(l))
 *                      │    ─> evict LRU unpinned until it fits (safety net) ─> 'evicted'
 *                      └─ POST load ─ ok ─> 'loaded' {durationMs} ─> pin, miss
 *                                     └ fail ─> 'load_failed' ─> TaskError
 */

/** A change of what is loaded. */
export interface LabelChange {
  kind: 'loaded' | 'evicted' | 'load_failed';
  label: string;
  /** Measured duration of the load or unload (0 for a resync). */
  durationMs: number;
  /** Why (load failures, resyncs). */
  message: string;
  /** On `loaded`: what the label takes (its files' size), when known. */
  footprintBytes?: number;
}

/** Result of `ensureLoaded`. */
export interface EnsureResult {
  /** True when this call loaded the label (a label miss). */
  miss: boolean;
  /** Time spent loading, in ms (0 on a hit). */
  loadMs: number;
  /** Call once the task is done with the label, so it may be evicted again. */
  release: () => void;
}

/**
 * A load that failed: the `TaskError` the task reports, with the time the load took, measured once
 * here (the same value the `load_failed` change carries).
 */
export class LabelLoadError extends TaskError {
  override name = 'LabelLoadError';
  /** Measured duration of the failed load, ms. */
  readonly loadMs: number;

  constructor(failure: TaskError, loadMs: number) {
    super(failure.code, failure.message, { cause: failure.cause });
    this.loadMs = loadMs;
  }
}

/** Options of `LabelManager`. */
export interface LabelManagerOptions {
  /** How many labels fit at once (WORKER_MAX_LABELS). */
  capacity: number;
  /** The model server; undefined = `none` mode: loads are instant bookkeeping. */
  client?: TritonClient;
  /** Receives `label_loaded`, `label_evicted`, `label_load_failed`. */
  logger: Logger;
  /** A loaded label's footprint in bytes, reported with its `loaded` change. Default: none reported. */
  footprintOf?: (label: string) => Promise<number>;
  /**
   * Memory the loaded labels may take together, bytes (WORKER_MEMORY_BUDGET_BYTES), counted with
   * `footprintOf`: the safety net then evicts until a label fits, not one-for-one. A label whose
   * footprint is unknown counts 0. Default 0 = no budget (the label count alone limits).
   */
  memoryBudgetBytes?: number;
  /**
   * Notices a loaded label whose files changed in the repository (copied in, or written by the
   * uploader without the dispatcher), so the next task reloads it instead of being served by the
   * old model. Default none: a loaded label is never re-checked.
   */
  staleCheck?: StaleModelCheck;
}

interface Entry {
  state: 'loading' | 'loaded' | 'unloading';
  /** Tasks using the label right now. */
  pins: number;
  lastUsed: number;
  /** What it takes (bytes, 0 = unknown), counted from the start of its load. */
  bytes: number;
}

/**
 * Emits `'change'` with a `LabelChange` for every load, eviction and failed load, in the order they
 * happen.
 */
export class LabelManager extends EventEmitter<{ change: [LabelChange] }> {
  readonly capacity: number;
  /** Memory budget in bytes; Infinity = none. */
  readonly memoryBudgetBytes: number;
  private readonly client: TritonClient | undefined;
  private readonly logger: Logger;
  private readonly footprintOf: ((label: string) => Promise<number>) | undefined;
  private readonly staleCheck: StaleModelCheck | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private clock = 0;

  constructor(options: LabelManagerOptions) {
    super();
    if (!Number.isInteger(options.capacity) || options.capacity < 1)
      throw new TypeError(`LabelManager: capacity must be a positive integer, got ${options.capacity}`);
    this.capacity = options.capacity;
    const budget = options.memoryBudgetBytes ?? 0;
    if (!Number.isFinite(budget) || budget < 0)
      throw new TypeError(`LabelManager: memoryBudgetBytes must be >= 0, got ${budget}`);
    this.memoryBudgetBytes = budget === 0 ? Infinity : budget;
    this.client = options.client;
    this.logger = options.logger;
    this.footprintOf = options.footprintOf;
    this.staleCheck = options.staleCheck;
  }

  /** The label's stamp (staleCheck), or undefined when there is no check or it cannot be read. */
  private async stamp(label: string): Promise<string | undefined> {
    if (!this.staleCheck || !this.client) return undefined;
    try {
      return await this.staleCheck.stamp(label);
    } catch (err) {
      this.logger.debug({ event: 'model_stamp_unknown', label, message: errorMessage(err) }, 'stamp unknown');
      return undefined;
    }
  }

  /** The new stamp when a loaded label's files changed since its load; an unreadable stamp is no change. */
  private async changedStamp(label: string): Promise<string | undefined> {
    if (!this.staleCheck || !this.client) return undefined;
    try {
      return await this.staleCheck.changed(label);
    } catch (err) {
      this.logger.debug({ event: 'model_stamp_unknown', label, message: errorMessage(err) }, 'stamp unknown');
      return undefined;
    }
  }

  /** The label's footprint, or undefined when unknown (a failed measurement is no failed load). */
  private async footprint(label: string): Promise<number | undefined> {
    if (!this.footprintOf) return undefined;
    try {
      return await this.footprintOf(label);
    } catch (err) {
      this.logger.debug(
        { event: 'footprint_unknown', label, message: errorMessage(err) },
        'footprint unknown',
      );
      return undefined;
    }
  }

  /** True in `none` mode (no model server). */
  get bookkeepingOnly(): boolean {
    return this.client === undefined;
  }

  /** Labels loaded now, most recently used first. */
  loaded(): string[] {
    return [...this.entries.entries()]
      .filter(([, e]) => e.state === 'loaded')
      .sort((a, b) => b[1].lastUsed - a[1].lastUsed)
      .map(([label]) => label);
  }

  /** Bytes the labels loaded, loading or unloading take now (unknown footprints count 0). */
  usedBytes(): number {
    let used = 0;
    for (const e of this.entries.values()) used += e.bytes;
    return used;
  }

  /** True when the label is loaded (not loading or unloading). */
  isLoaded(label: string): boolean {
    return this.entries.get(label)?.state === 'loaded';
  }

  /**
   * Makes sure `label` is loaded and pins it for a task; loads it (evicting the least recently used
   * unpinned label if capacity is full) when needed. Rejects with a `LabelLoadError`
   * (`label_not_found`, `label_load_failed` or `model_server_unavailable`) when the load fails, or a
   * `TaskError` (`label_load_failed`) when no room could be made.
   */
  async ensureLoaded(label: string): Promise<EnsureResult> {
    return this.withLock(label, async () => {
      let miss = false;
      let loadMs = 0;
      if (!this.isLoaded(label)) {
        // Measured before the load, so room is made for what it will take (files' size).
        const bytes = this.footprintOf ? await this.footprint(label) : undefined;
        if ((bytes ?? 0) > this.memoryBudgetBytes)
          throw new TaskError(
            'label_load_failed',
            `${label} takes ${bytes} bytes, more than the memory budget of ${this.memoryBudgetBytes}`,
          );
        try {
          await this.makeRoom(label, bytes ?? 0);
        } catch (err) {
          throw new TaskError('label_load_failed', `could not make room for ${label}: ${errorMessage(err)}`);
        }
        // Taken before the load: a change written during the load is seen by the next check.
        const stamp = await this.stamp(label);
        loadMs = await this.doLoad(label, bytes);
        this.staleCheck?.remember(label, stamp);
        miss = true;
      } else {
        const fresh = await this.changedStamp(label);
        if (fresh !== undefined) {
          // The task waits for the new model, so it counts as a miss (it had to load its label).
          loadMs = await this.doReload(label, fresh);
          miss = true;
        }
      }
      // Pinned under the lock, so no eviction can slip in between the load and the task.
      const entry = this.entries.get(label)!;
      entry.pins++;
      entry.lastUsed = ++this.clock;
      let released = false;
      return {
        miss,
        loadMs,
        release: () => {
          if (released) return;
          released = true;
          entry.pins = Math.max(0, entry.pins - 1);
          if (this.entries.size > this.capacity || this.usedBytes() > this.memoryBudgetBytes) this.trim();
        },
      };
    });
  }

  /** Loads a label outside a task (LabelOrder load). Resolves false when it failed (already reported). */
  async load(label: string): Promise<boolean> {
    try {
      const r = await this.ensureLoaded(label);
      r.release();
      return true;
    } catch {
      return false;
    }
  }

  /** Unloads a label if it is loaded; resolves with the measured duration, or undefined if it was not loaded. */
  async unload(label: string, reason = 'ordered'): Promise<number | undefined> {
    return this.withLock(label, async () => {
      if (!this.isLoaded(label)) return undefined;
      return this.doUnload(label, reason);
    });
  }

  /**
   * Replaces our picture with the model server's (after it restarted, or at start-up): labels we
   * thought loaded but are not are reported evicted; ready models we did not know become loaded.
   */
  async resync(reason: string): Promise<void> {
    if (!this.client) return;
    const index = await this.client.repositoryIndex();
    const ready = new Set(index.filter((m) => m.state === 'READY').map((m) => m.name));
    for (const [label, entry] of [...this.entries]) {
      if (entry.state === 'loaded' && !ready.has(label)) {
        this.entries.delete(label);
        this.staleCheck?.forget(label);
        this.report({ kind: 'evicted', label, durationMs: 0, message: reason });
      }
    }
    for (const label of ready) {
      if (!this.entries.has(label)) {
        const bytes = (await this.footprint(label)) ?? 0;
        // What the server holds is taken to be what the repository has now.
        this.staleCheck?.remember(label, await this.stamp(label));
        this.entries.set(label, { state: 'loaded', pins: 0, lastUsed: ++this.clock, bytes });
        this.report({
          kind: 'loaded',
          label,
          durationMs: 0,
          message: reason,
          footprintBytes: bytes || undefined,
        });
      }
    }
  }

  /**
   * Forgets every label at once, reporting each evicted: the model server died and took them
   * with it. Loads in progress fail on their own.
   */
  forgetAll(reason: string): void {
    for (const [label, entry] of [...this.entries]) {
      this.entries.delete(label);
      this.staleCheck?.forget(label);
      if (entry.state !== 'loading') this.report({ kind: 'evicted', label, durationMs: 0, message: reason });
    }
  }

  /**
   * Evicts least recently used unpinned labels until one more of `bytes` fits, by count and by
   * memory. When every other label is loading, unloading or in use, the load goes over capacity
   * instead of waiting (waiting could deadlock two loads on each other); `trim` brings it back down
   * when a task lets go.
   */
  private async makeRoom(forLabel: string, bytes: number, limit = this.capacity - 1): Promise<void> {
    while (this.entries.size > limit || this.usedBytes() + bytes > this.memoryBudgetBytes) {
      const victim = this.pickVictim(forLabel);
      if (victim === undefined) {
        this.logger.warn(
          {
            event: 'label_capacity_exceeded',
            label: forLabel,
            loaded: this.loaded(),
            capacity: this.capacity,
            used_bytes: this.usedBytes(),
            needed_bytes: bytes,
            budget_bytes: Number.isFinite(this.memoryBudgetBytes) ? this.memoryBudgetBytes : undefined,
          },
          'no label can be evicted now: going over capacity',
        );
        return;
      }
      await this.withLock(victim, async () => {
        if (this.isLoaded(victim) && this.entries.get(victim)!.pins === 0)
          await this.doUnload(victim, 'capacity');
      });
    }
  }

  /** Back down to capacity after an over-capacity load (background; errors are logged). */
  private trim(): void {
    this.makeRoom('', 0, this.capacity).catch((err: unknown) =>
      this.logger.warn(
        { event: 'label_trim_failed', message: errorMessage(err) },
        'could not evict down to capacity',
      ),
    );
  }

  private pickVictim(except: string): string | undefined {
    let victim: string | undefined;
    let oldest = Infinity;
    for (const [label, e] of this.entries) {
      if (label === except || e.state !== 'loaded' || e.pins > 0) continue;
      if (e.lastUsed < oldest) {
        oldest = e.lastUsed;
        victim = label;
      }
    }
    return victim;
  }

  private async doLoad(label: string, measured?: number): Promise<number> {
    const reserved = measured ?? 0;
    this.entries.set(label, { state: 'loading', pins: 0, lastUsed: ++this.clock, bytes: reserved });
    const start = performance.now();
    try {
      if (this.client) await this.client.loadModel(label);
    } catch (err) {
      this.entries.delete(label);
      const error = await this.classifyLoadError(label, err);
      const durationMs = elapsedMs(start);
      this.report({ kind: 'load_failed', label, durationMs, message: error.message });
      throw new LabelLoadError(error, durationMs);
    }
    const durationMs = elapsedMs(start);
    const entry: Entry = { state: 'loaded', pins: 0, lastUsed: ++this.clock, bytes: reserved };
    this.entries.set(label, entry);
    const footprintBytes = measured ?? (await this.footprint(label));
    entry.bytes = footprintBytes ?? 0;
    this.report({ kind: 'loaded', label, durationMs, message: '', footprintBytes });
    return durationMs;
  }

  private async doUnload(label: string, reason: string): Promise<number> {
    const entry = this.entries.get(label)!;
    entry.state = 'unloading';
    const start = performance.now();
    try {
      if (this.client) await this.client.unloadModel(label);
    } catch (err) {
      // Triton answers 400 for a model it does not hold: then it is gone, which is what we wanted.
      if (!(err instanceof TritonError && err.status === 400)) {
        entry.state = 'loaded';
        this.logger.warn(
          { event: 'label_unload_failed', label, message: errorMessage(err) },
          'unload failed',
        );
        throw err;
      }
    }
    const durationMs = elapsedMs(start);
    this.entries.delete(label);
    this.staleCheck?.forget(label);
    this.report({ kind: 'evicted', label, durationMs, message: reason });
    return durationMs;
  }

  /**
   * Reloads a loaded label whose files changed (Triton's load of a loaded model reloads it; the old
   * version serves until the new one is ready). When the new files do not load, the label is
   * unloaded and reported evicted, then load_failed: the old model must not go on answering.
   */
  private async doReload(label: string, stamp: string): Promise<number> {
    const client = this.client!;
    const entry = this.entries.get(label)!;
    this.logger.info({ event: 'label_stale', label }, 'model changed in the repository: reloading');
    const start = performance.now();
    try {
      await client.loadModel(label);
    } catch (err) {
      const error = await this.classifyLoadError(label, err);
      await client.unloadModel(label).catch(() => undefined);
      const durationMs = elapsedMs(start);
      this.entries.delete(label);
      this.staleCheck?.forget(label);
      this.report({ kind: 'evicted', label, durationMs: 0, message: 'changed in the repository' });
      this.report({ kind: 'load_failed', label, durationMs, message: error.message });
      throw new LabelLoadError(error, durationMs);
    }
    const durationMs = elapsedMs(start);
    this.staleCheck?.remember(label, stamp);
    const footprintBytes = await this.footprint(label);
    if (footprintBytes !== undefined) entry.bytes = footprintBytes;
    this.report({
      kind: 'loaded',
      label,
      durationMs,
      message: 'reloaded: changed in the repository',
      footprintBytes,
    });
    return durationMs;
  }

  /** label_not_found when the repository lacks the model, else label_load_failed. */
  private async classifyLoadError(label: string, err: unknown): Promise<TaskError> {
    const message = errorMessage(err);
    if (this.client && err instanceof TritonError && err.status < 500) {
      try {
        const index = await this.client.repositoryIndex();
        if (!index.some((m) => m.name === label))
          return new TaskError(
            'label_not_found',
            `model repository has no model named ${JSON.stringify(label)}`,
          );
      } catch {
        // Could not tell: report the load failure itself.
      }
    }
    return modelServerFailure(err, 'label_load_failed', `loading ${label} failed: ${message}`);
  }

  private report(change: LabelChange): void {
    const durationMs = roundMs(change.durationMs);
    if (change.kind === 'loaded')
      this.logger.info(
        { event: 'label_loaded', label: change.label, duration_ms: durationMs },
        'label loaded',
      );
    else if (change.kind === 'evicted')
      this.logger.info(
        { event: 'label_evicted', label: change.label, duration_ms: durationMs, reason: change.message },
        'label evicted',
      );
    else
      this.logger.warn(
        { event: 'label_load_failed', label: change.label, message: change.message },
        'label load failed',
      );
    this.emit('change', { ...change, durationMs });
  }

  /** Runs `fn` after every earlier operation on `label` has settled. */
  private async withLock<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(label) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(label, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(label) === settled) this.locks.delete(label);
    }
  }
}

/** Milliseconds to the microsecond, as every duration leaves the worker. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Time since `start`, rounded once, so a load's LabelEvent and its task's TaskResult carry the very
 * same number.
 */
function elapsedMs(start: number): number {
  return roundMs(performance.now() - start);
}
