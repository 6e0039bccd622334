/**
 * The leader lease in Redis, with a fencing token (issue 13).
 *
 *   key `<prefix>leader` = `<replicaId>:<token>`, PX ttl
 *   acquire: one Lua script: if the key is absent, token = INCR `<prefix>leader:epoch`, SET it, return
 *            the token; else 0. Tokens only grow, so a worker can tell a newer leader from an old one.
 *   renew:   compare-and-PEXPIRE (the key still holds our value), every ttl/3 by the caller.
 *   release: compare-and-DEL (a step-down hands the lease over at once, not after the TTL).
 *
 * The local guard: the lease counts as held only while `now < sentAt(last ok renew) + ttl`, the
 * time measured from when the renew was *sent*, so a process paused longer than the TTL (GC, SIGSTOP)
 * stops giving orders before it even hears that Redis has let the key expire.
 */
import type { Redis } from 'ioredis';

const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Who holds the lease now. */
export interface LeaseHolder {
  readonly replicaId: string;
  readonly token: number;
}

/** Options of {@link Lease}. */
export interface LeaseOptions {
  /** Prefix of the lease keys (`<prefix>leader`, `<prefix>leader:epoch`). */
  readonly keyPrefix: string;
  readonly replicaId: string;
  /** Lease time to live (ms). */
  readonly ttlMs: number;
  /** Clock for the local guard [Date.now]; tests move it. */
  readonly now?: () => number;
}

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** One replica's view of the leader lease. It holds at most one token at a time. */
export class Lease {
  /** The token while held (0: not held). */
  private heldToken = 0;
  /** When the last successful acquire or renew was sent (the guard counts from here). */
  private validFrom = 0;
  private readonly key: string;
  private readonly epochKey: string;
  private readonly now: () => number;
  private readonly scripts: Record<'acquire' | 'renew' | 'release', Script>;

  constructor(
    private readonly redis: Redis,
    private readonly options: LeaseOptions,
  ) {
    this.key = `${options.keyPrefix}leader`;
    this.epochKey = `${options.keyPrefix}leader:epoch`;
    this.now = options.now ?? Date.now;
    const define = (name: string, lua: string): Script => {
      redis.defineCommand(name, { numberOfKeys: 2, lua });
      return ((redis as unknown as Record<string, Script>)[name] as Script).bind(redis);
    };
    this.scripts = {
      acquire: define('leaseAcquire', ACQUIRE),
      renew: define('leaseRenew', RENEW),
      release: define('leaseRelease', RELEASE),
    };
  }

  /** The token while the lease is held by this replica (0 otherwise). */
  get token(): number {
    return this.heldToken;
  }

  /** Whether the local guard still lets this replica act as the leader (`now < last ok renew + ttl`). */
  isValid(now: number = this.now()): boolean {
    return this.heldToken !== 0 && now < this.validFrom + this.options.ttlMs;
  }

  /** When the local guard runs out (Unix ms; 0 when not held). */
  get validUntil(): number {
    return this.heldToken === 0 ? 0 : this.validFrom + this.options.ttlMs;
  }

  /** Takes the lease if no one holds it; resolves the new token, or 0 when another replica holds it. */
  async acquire(): Promise<number> {
    const sentAt = this.now();
    const token = Number(
      await this.scripts.acquire(this.key, this.epochKey, this.options.replicaId, this.options.ttlMs),
    );
    if (token > 0) {
      this.heldToken = token;
      this.validFrom = sentAt;
    }
    return token;
  }

  /**
   * Extends the held lease by the TTL; false when it is not ours any more (expired, taken), which
   * also drops it locally. Rejects on a Redis error (the guard then runs out on its own).
   */
  async renew(): Promise<boolean> {
    if (this.heldToken === 0) return false;
    const token = this.heldToken;
    const sentAt = this.now();
    const ok =
      (await this.scripts.renew(this.key, this.epochKey, this.value(token), this.options.ttlMs)) === 1;
    if (this.heldToken !== token) return false; // dropped meanwhile
    if (ok) this.validFrom = sentAt;
    else this.heldToken = 0;
    return ok;
  }

  /** Drops the lease locally at once and deletes the key if it is still ours (best effort). */
  async release(): Promise<void> {
    const token = this.heldToken;
    this.heldToken = 0;
    if (token !== 0) await this.scripts.release(this.key, this.epochKey, this.value(token));
  }

  /**
   * Deletes the key if it names this replica with `token` while this replica does not hold it: an
   * acquire whose answer timed out (a frozen Redis ran it later) left a lease no one acts on; deleting
   * it lets the next acquire go ahead now instead of after the TTL. Resolves whether it was deleted.
   */
  async releaseOrphan(token: number): Promise<boolean> {
    if (token === this.heldToken) return false;
    return (await this.scripts.release(this.key, this.epochKey, this.value(token))) === 1;
  }

  /** Forgets the lease locally (no Redis call): after a worker said a newer leader exists. */
  drop(): void {
    this.heldToken = 0;
  }

  /** Milliseconds until the current lease expires in Redis (-2: no lease, -1: no TTL). */
  async pttl(): Promise<number> {
    return this.redis.pttl(this.key);
  }

  /** The current holder per Redis, or undefined when no one holds the lease. */
  async holder(): Promise<LeaseHolder | undefined> {
    return parseHolder(await this.redis.get(this.key));
  }

  /** The latest token ever handed out (the epoch). */
  async epoch(): Promise<number> {
    return Number((await this.redis.get(this.epochKey)) ?? 0);
  }

  private value(token: number): string {
    return `${this.options.replicaId}:${token}`;
  }
}

/** `<replicaId>:<token>` -> holder (undefined for null or a malformed value). */
export function parseHolder(value: string | null): LeaseHolder | undefined {
  if (value === null) return undefined;
  const at = value.lastIndexOf(':');
  const token = Number(value.slice(at + 1));
  if (at <= 0 || !Number.isSafeInteger(token) || token <= 0) return undefined;
  return { replicaId: value.slice(0, at), token };
}
