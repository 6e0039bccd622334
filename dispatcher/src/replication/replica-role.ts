/**
 * Which role this replica plays, driven by the lease (issue 13):
 *
 *            acquire ok ──> promote(token) (adoption, Leadership) ──┐
 *   standby ─┤                                                     leader ── renew every ttl/3
 *     ^      └ held by another: wait PTTL (at most 250 ms), retry    │
 *     └──────── renew refused / local guard ran out / stale_leader ──┘ (demote(reason))
 *
 * A standalone dispatcher (no REDIS_URL) has no ReplicaRole at all. Timers are unref'd; the loop
 * catches its own errors. A Redis outage: every lease call fails within the command timeout; the
 * leader's guard timer fires when the last renew that succeeded runs out (at most the TTL after
 * it was sent) and it steps down, so no replica leads while Redis is away; standbys keep polling,
 * and the first acquire after Redis is back elects a leader. Each call's outcome feeds
 * {@link RedisHealth} (one warning per outage, `/ready`).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Lease } from './lease.js';
import { isConnectivityError, type RedisHealth } from './redis-health.js';

/** What `/ready`, `/workers` and Welcome say about the replica. */
export type ReplicaRoleName = 'standalone' | 'leader' | 'standby';

/** A replica's picture of the lease, for `/ready` and `/workers`. */
export interface ReplicaState {
  readonly id: string;
  readonly role: ReplicaRoleName;
  /** The replica holding the lease as last seen ('' when unknown or none). */
  readonly leader_id: string;
  /** The newest fencing token seen (the lease epoch). */
  readonly epoch: number;
}

/** Longest wait between two acquire tries of a standby (ms): failover ≈ TTL + this. */
export const STANDBY_POLL_MAX_MS = 250;

/** Options of {@link ReplicaRole}. */
export interface ReplicaRoleOptions {
  readonly lease: Lease;
  readonly replicaId: string;
  readonly ttlMs: number;
  readonly logger: Logger;
  /** Called on taking the lease, before the role reports leader to anyone outside (adoption). */
  readonly promote: (token: number) => Promise<void>;
  /** Called once the replica stopped leading (its orders stop at once; `reason` is logged). */
  readonly demote: (reason: string) => void;
  /** Told of every lease call's outcome [none]. */
  readonly health?: RedisHealth;
}

/** The lease loop and the role it gives this replica. Events: `leader` (token), `standby` (reason). */
export class ReplicaRole extends EventEmitter<{ leader: [token: number]; standby: [reason: string] }> {
  private current: 'standby' | 'leader' = 'standby';
  private leaderId = '';
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the local lease guard runs out, in case no renew succeeded by then. */
  private guardTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private started = false;

  constructor(private readonly opts: ReplicaRoleOptions) {
    super();
  }

  /** `leader` or `standby`. */
  get role(): 'leader' | 'standby' {
    return this.current;
  }

  /** This replica's fencing token while it leads, else 0. */
  get token(): number {
    return this.current === 'leader' ? this.opts.lease.token : 0;
  }

  /** Whether an order may go out now: leader, and the local lease guard has not run out. */
  mayOrder(): boolean {
    return this.current === 'leader' && this.opts.lease.isValid();
  }

  /** The picture for `/ready` and `/workers`. */
  state(): ReplicaState {
    return { id: this.opts.replicaId, role: this.current, leader_id: this.leaderId, epoch: this.epoch };
  }

  /** Starts polling for the lease. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.schedule(() => this.poll(), 0);
  }

  /**
   * Stops leading at once (a worker answered stale_leader, or the guard ran out): no more orders,
   * the lease is released when it is still ours, and the replica polls again as a standby.
   */
  stepDown(reason: string): void {
    if (this.current !== 'leader') return;
    this.current = 'standby';
    clearTimeout(this.guardTimer);
    this.leaderId = ''; // unknown until the next poll reads the lease
    const lease = this.opts.lease;
    this.opts.logger.warn(
      { event: 'replica_stepped_down', replica_id: this.opts.replicaId, reason, token: lease.token },
      'replica stopped leading',
    );
    lease
      .release()
      .catch((err: unknown) =>
        this.callFailed(err, { event: 'lease_release_failed' }, 'could not release the lease'),
      );
    try {
      this.opts.demote(reason);
    } catch (err) {
      this.opts.logger.error({ err, event: 'demote_failed' }, 'stepping down failed');
    }
    this.emit('standby', reason);
    // Give the new leader a lease period before trying again, so two replicas do not flap.
    this.schedule(() => this.poll(), this.opts.ttlMs);
  }

  /** Stops the loop and releases the lease if held. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.guardTimer);
    const wasLeader = this.current === 'leader';
    this.current = 'standby';
    if (wasLeader) await this.opts.lease.release().catch(() => undefined);
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      fn().catch((err: unknown) =>
        this.opts.logger.error({ err, event: 'lease_loop_failed' }, 'lease loop failed'),
      );
    }, ms).unref();
  }

  private async poll(): Promise<void> {
    const { lease, replicaId } = this.opts;
    let wait = STANDBY_POLL_MAX_MS;
    try {
      const token = await lease.acquire();
      this.opts.health?.succeeded();
      if (this.closed) return;
      if (token > 0) return await this.becomeLeader(token);
      const [holder, pttl] = await Promise.all([lease.holder(), lease.pttl()]);
      this.leaderId = holder?.replicaId ?? '';
      if (holder) this.epoch = Math.max(this.epoch, holder.token);
      wait = pttl > 0 ? Math.min(pttl + 1, STANDBY_POLL_MAX_MS) : 5;
      if (holder?.replicaId === replicaId && this.current === 'standby' && lease.token !== holder.token) {
        // Our own acquire, run by a Redis that answered too late (frozen): no one leads on it.
        if (await lease.releaseOrphan(holder.token)) {
          this.opts.logger.info(
            { event: 'lease_orphan_released', token: holder.token },
            'released a lease an unanswered acquire left behind',
          );
          wait = 0;
        }
      }
    } catch (err) {
      this.callFailed(err, { event: 'lease_poll_failed' }, 'could not reach Redis for the lease');
    }
    if (this.current === 'standby') this.schedule(() => this.poll(), wait);
  }

  /** A lease call failed: an unreachable Redis is the outage's one warning, anything else a warning of its own. */
  private callFailed(err: unknown, fields: { event: string }, message: string): void {
    if (isConnectivityError(err)) {
      this.opts.health?.failed(err, 'lease');
      this.opts.logger.debug({ err, ...fields }, message);
    } else this.opts.logger.warn({ err, ...fields }, message);
  }

  /** (Re)arms the guard timer for the lease's current local expiry. */
  private armGuard(): void {
    clearTimeout(this.guardTimer);
    const until = this.opts.lease.validUntil;
    if (this.closed || until === 0) return;
    this.guardTimer = setTimeout(
      () => {
        if (this.current === 'leader' && !this.opts.lease.isValid())
          this.stepDown('the lease ran out locally before a renew succeeded');
        else if (this.current === 'leader') this.armGuard();
      },
      Math.max(0, until - Date.now()) + 1,
    ).unref();
  }

  private async becomeLeader(token: number): Promise<void> {
    const { logger, replicaId } = this.opts;
    this.current = 'leader';
    this.leaderId = replicaId;
    this.epoch = Math.max(this.epoch, token);
    logger.info({ event: 'replica_leading', replica_id: replicaId, token }, 'replica took the lease');
    this.armGuard();
    this.schedule(() => this.renew(), Math.floor(this.opts.ttlMs / 3));
    try {
      await this.opts.promote(token);
    } catch (err) {
      logger.error({ err, event: 'promotion_failed' }, 'taking over as leader failed');
      this.stepDown('promotion failed');
      return;
    }
    if (this.current === 'leader' && this.opts.lease.token === token) this.emit('leader', token);
  }

  private async renew(): Promise<void> {
    if (this.current !== 'leader') return;
    const { lease } = this.opts;
    if (!lease.isValid()) return this.stepDown('the lease ran out locally before a renew succeeded');
    let ok: boolean;
    try {
      ok = await lease.renew();
      this.opts.health?.succeeded();
      if (ok) this.armGuard();
    } catch (err) {
      this.callFailed(err, { event: 'lease_renew_failed' }, 'could not renew the lease');
      ok = lease.isValid();
      if (!ok && this.current === 'leader')
        return this.stepDown('the lease ran out locally before a renew succeeded');
    }
    if (this.current !== 'leader') return;
    if (!ok) return this.stepDown('the lease was lost (renew refused)');
    this.schedule(() => this.renew(), Math.floor(this.opts.ttlMs / 3));
  }
}
