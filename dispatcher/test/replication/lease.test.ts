// The leader lease against a real redis-server (Debian's, started on a free port by test/support).
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lease, parseHolder } from '../../src/replication/lease.js';
import { ReplicaRole } from '../../src/replication/replica-role.js';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const logger = pino({ level: 'silent' });
let server: RedisServerHandle;
const clients: Redis[] = [];
let prefixes = 0;

function client(): Redis {
  const redis = new Redis(server.url);
  clients.push(redis);
  return redis;
}

/** Two replicas' leases on a fresh prefix; each replica has its own clock and connection. */
function leases(ttlMs: number) {
  const keyPrefix = `lease${++prefixes}:`;
  const clock = { a: 1_000_000, b: 1_000_000 };
  const a = new Lease(client(), { keyPrefix, replicaId: 'a', ttlMs, now: () => clock.a });
  const b = new Lease(client(), { keyPrefix, replicaId: 'b', ttlMs, now: () => clock.b });
  return { a, b, clock, keyPrefix };
}

/** Resolves once Redis let the lease key expire (polls PTTL; no fixed sleep). */
async function untilExpired(lease: Lease): Promise<void> {
  for (;;) {
    const pttl = await lease.pttl();
    if (pttl === -2) return;
    await new Promise((resolve) => setTimeout(resolve, Math.max(5, pttl)));
  }
}

beforeAll(async () => {
  if (!redisMissing) server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

describe.skipIf(redisMissing !== undefined)('Lease (real redis-server)', () => {
  it('acquires once: a second replica gets 0 while the lease is held', async () => {
    const { a, b, keyPrefix } = leases(5000);
    const token = await a.acquire();
    expect(token).toBe(1);
    expect(a.isValid()).toBe(true);
    expect(await b.acquire()).toBe(0);
    expect(b.isValid()).toBe(false);
    expect(await client().get(`${keyPrefix}leader`)).toBe('a:1');
    expect(await b.holder()).toEqual({ replicaId: 'a', token: 1 });
  });

  it('renews: the TTL is extended and the local guard moves forward', async () => {
    const { a, clock } = leases(5000);
    await a.acquire();
    clock.a += 4000;
    expect(await a.renew()).toBe(true);
    clock.a += 4000; // 8 s after the acquire, 4 s after the renew
    expect(a.isValid()).toBe(true);
    expect(await a.pttl()).toBeGreaterThan(4000);
  });

  it('the local guard runs out at last ok renew + ttl, before Redis is asked', async () => {
    const { a, clock } = leases(5000);
    await a.acquire();
    clock.a += 4999;
    expect(a.isValid()).toBe(true);
    clock.a += 1;
    expect(a.isValid()).toBe(false);
  });

  it('is lost on expiry: renew is refused and the lease dropped locally', async () => {
    const { a } = leases(300);
    await a.acquire();
    await untilExpired(a);
    expect(await a.renew()).toBe(false);
    expect(a.token).toBe(0);
    expect(a.isValid()).toBe(false);
  });

  it('a second replica takes over after expiry with a higher token', async () => {
    const { a, b } = leases(300);
    const first = await a.acquire();
    await untilExpired(a);
    const second = await b.acquire();
    expect(second).toBeGreaterThan(first);
    expect(await b.holder()).toEqual({ replicaId: 'b', token: second });
  });

  it('a paused holder (stopped renewing) cannot renew after another took the lease', async () => {
    const { a, b, clock } = leases(300);
    await a.acquire();
    await untilExpired(a);
    const taken = await b.acquire();
    expect(taken).toBeGreaterThan(0);
    clock.a += 10; // the paused holder wakes up: its guard may even still look fine
    expect(await a.renew()).toBe(false);
    expect(a.isValid()).toBe(false);
    // And it did not disturb the new holder.
    expect(await b.holder()).toEqual({ replicaId: 'b', token: taken });
    expect(await b.renew()).toBe(true);
  });

  it('release hands the lease over at once, and never deletes another holder', async () => {
    const { a, b } = leases(60_000);
    await a.acquire();
    await a.release();
    const token = await b.acquire();
    expect(token).toBeGreaterThan(0);
    await a.release(); // not held: nothing happens
    expect((await b.holder())?.replicaId).toBe('b');
  });

  it('releaseOrphan deletes a lease in its name it does not hold (an acquire a frozen Redis ran late), nothing else', async () => {
    const { a, b, keyPrefix } = leases(5000);
    const raw = client();
    // a's acquire timed out on the client; Redis ran it afterwards: the key names a, a holds nothing.
    await raw.set(`${keyPrefix}leader`, 'a:7', 'PX', 5000);
    expect(a.token).toBe(0);
    expect(await b.releaseOrphan(7)).toBe(false); // not b's
    expect(await a.releaseOrphan(6)).toBe(false); // another token
    expect(await a.releaseOrphan(7)).toBe(true);
    expect(await a.holder()).toBeUndefined();
    // The lease a does hold is never an orphan.
    const token = await a.acquire();
    expect(await a.releaseOrphan(token)).toBe(false);
    expect((await a.holder())?.token).toBe(token);
  });

  it('parseHolder refuses malformed values', () => {
    expect(parseHolder(null)).toBeUndefined();
    expect(parseHolder('x')).toBeUndefined();
    expect(parseHolder('a:0')).toBeUndefined();
    expect(parseHolder('host-1:2:7')).toEqual({ replicaId: 'host-1:2', token: 7 });
  });
});

describe.skipIf(redisMissing !== undefined)('ReplicaRole (real redis-server)', () => {
  it('one of two replicas leads; when it closes, the other leads with a higher token', async () => {
    const keyPrefix = `role${++prefixes}:`;
    const make = (id: string) => {
      const lease = new Lease(client(), { keyPrefix, replicaId: id, ttlMs: 300 });
      const promoted: number[] = [];
      const role = new ReplicaRole({
        lease,
        replicaId: id,
        ttlMs: 300,
        logger,
        promote: async (token) => void promoted.push(token),
        demote: () => {},
      });
      return { role, promoted };
    };
    const a = make('a');
    const aLeads = new Promise<number>((resolve) => a.role.once('leader', resolve));
    a.role.start();
    const first = await aLeads;
    const b = make('b');
    b.role.start();
    // b polls while a holds and renews: it sees a as the leader and stays standby.
    while (b.role.state().leader_id !== 'a') await new Promise((resolve) => setTimeout(resolve, 10));
    expect(b.role.role).toBe('standby');
    expect(b.role.state().leader_id).toBe('a');
    const bLeads = new Promise<number>((resolve) => b.role.once('leader', resolve));
    await a.role.close();
    const second = await bLeads;
    expect(second).toBeGreaterThan(first);
    expect(b.promoted).toEqual([second]);
    expect(b.role.mayOrder()).toBe(true);
    expect(a.role.mayOrder()).toBe(false);
    await b.role.close();
  });
});
