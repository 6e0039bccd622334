/**
 * Which workers get no new tasks for a while because they misbehaved: their tasks timed out (a
 * worker that swallows tasks) or they were lost while running tasks (a worker that flaps). Pure
 * bookkeeping with time passed in; the task tracker feeds it strikes and applies what it says.
 * Keys are worker ids there; the worker endpoint keeps a second instance keyed by peer (credential
 * or remote address), so a peer that flaps under a new id each time is caught as well.
 *
 *   strike(id, reason, now) ── `strikes` strikes within `windowMs`? ── no ──> nothing
 *        │ yes
 *        v
 *   quarantined until now + cool-down (doubling per repeat, at most `maxCooldownMs`)
 *        │ releaseDue(now) past that time
 *        v
 *   released: routed again; a worker that stays clean for `windowMs` after release starts over
 */

/** Why a worker got a strike. */
export type StrikeReason = 'task_timeout' | 'lost_with_tasks' | 'flapping';

/** Options of {@link WorkerQuarantine}. */
export interface QuarantineOptions {
  /** Strikes within `windowMs` that quarantine a worker. Default 3. */
  readonly strikes?: number;
  /** How far back strikes count (ms). Default 60000. */
  readonly windowMs?: number;
  /** First cool-down (ms); each repeat doubles it. Default 30000. */
  readonly cooldownMs?: number;
  /** Longest cool-down (ms). Default 600000. */
  readonly maxCooldownMs?: number;
}

interface Record {
  /** Times of the strikes still inside the window, oldest first. */
  strikes: number[];
  /** Quarantined until this time; undefined when not quarantined. */
  until: number | undefined;
  /** Quarantines so far (for the doubling back-off). */
  count: number;
  /** When the last quarantine ended (for forgetting the back-off). */
  releasedAt: number;
  reason: StrikeReason | undefined;
}

/** A quarantine that began: who, until when, why. */
export interface QuarantineStart {
  readonly workerId: string;
  readonly until: number;
  readonly cooldownMs: number;
  readonly reason: StrikeReason;
}

/** Per worker id strike counts and quarantine periods; see the file header. */
export class WorkerQuarantine {
  private readonly records = new Map<string, Record>();
  private readonly strikes: number;
  private readonly windowMs: number;
  private readonly cooldownMs: number;
  private readonly maxCooldownMs: number;

  constructor(options: QuarantineOptions = {}) {
    this.strikes = options.strikes ?? 3;
    this.windowMs = options.windowMs ?? 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.maxCooldownMs = options.maxCooldownMs ?? 600_000;
  }

  /** Counts a strike; returns the quarantine it started, if it started one. */
  strike(workerId: string, reason: StrikeReason, now: number): QuarantineStart | undefined {
    let r = this.records.get(workerId);
    if (!r) {
      r = { strikes: [], until: undefined, count: 0, releasedAt: -Infinity, reason: undefined };
      this.records.set(workerId, r);
    }
    if (r.until !== undefined) return undefined; // already quarantined
    // A worker clean for a whole window after its last quarantine starts over at the first cool-down.
    if (r.count > 0 && now - r.releasedAt > this.windowMs) r.count = 0;
    r.strikes.push(now);
    while (r.strikes.length > 0 && r.strikes[0]! <= now - this.windowMs) r.strikes.shift();
    if (r.strikes.length < this.strikes) return undefined;
    const cooldownMs = Math.min(this.maxCooldownMs, this.cooldownMs * 2 ** r.count);
    r.count++;
    r.strikes = [];
    r.until = now + cooldownMs;
    r.reason = reason;
    return { workerId, until: r.until, cooldownMs, reason };
  }

  /** Whether `workerId` is quarantined at `now` (a period that ended but was not yet released counts). */
  isQuarantined(workerId: string): boolean {
    return this.records.get(workerId)?.until !== undefined;
  }

  /**
   * Ms left of `workerId`'s quarantine at `now`, or undefined when it is not quarantined (a period
   * that ended is released here, without waiting for `releaseDue`).
   */
  remainingMs(workerId: string, now: number): number | undefined {
    const r = this.records.get(workerId);
    if (r?.until === undefined) return undefined;
    if (r.until > now) return r.until - now;
    r.until = undefined;
    r.releasedAt = now;
    return undefined;
  }

  /** Ends the quarantines due at `now` and returns those worker ids. */
  releaseDue(now: number): string[] {
    const out: string[] = [];
    for (const [id, r] of this.records) {
      if (r.until !== undefined && r.until <= now) {
        r.until = undefined;
        r.releasedAt = now;
        out.push(id);
      } else if (r.until === undefined) {
        while (r.strikes.length > 0 && r.strikes[0]! <= now - this.windowMs) r.strikes.shift();
        // Nothing left to remember: keeps the table small with many short-lived ids.
        if (r.strikes.length === 0 && now - r.releasedAt > this.windowMs) this.records.delete(id);
      }
    }
    return out;
  }

  /** Number of workers quarantined now. */
  get size(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.until !== undefined) n++;
    return n;
  }
}
