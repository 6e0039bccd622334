// A Redis outage under two replicas (issue 13): a real redis-server that the test freezes (SIGSTOP)
// or kills (SIGKILL) and starts again on the same port, two in-process replicas and a real worker
// linked to both. What a user expects: no replica leads while Redis is away (no split brain),
// producers get a quick 503 naming the shared store, the tasks running at the outage are not lost,
// a leader is elected when Redis is back, and the log has one warning per outage.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { Gate, ReplicaSet, runTask, sendTask, taskStatus, until } from './replicas.js';

let server: RedisServerHandle | undefined;
let set: ReplicaSet | undefined;
afterEach(async () => {
  await set?.close();
  set = undefined;
  await server?.stop();
  server = undefined;
});

type LogRecord = { level: number; event?: string; err?: { message?: string }; msg?: string };

/** A pino logger that keeps its records (debug and up). */
function recordingLogger(): { logger: pino.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as LogRecord);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), records };
}

async function ready(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/ready`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function role(url: string): Promise<string> {
  return ((await ready(url)).body.replica as { role: string }).role;
}

/** Expects the 503 a producer gets while Redis is away. */
async function expectStoreUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('task_store_unavailable');
  expect(body.error.message).toMatch(/shared task store \(Redis\)/);
}

const outages = [
  {
    name: 'frozen (SIGSTOP, then SIGCONT)',
    down: (s: RedisServerHandle) => Promise.resolve(s.pause()),
    up: (s: RedisServerHandle) => Promise.resolve(s.resume()),
  },
  {
    name: 'killed (SIGKILL) and started again on the same port',
    down: (s: RedisServerHandle) => s.kill(),
    up: (s: RedisServerHandle) => s.start(),
  },
];

describe.skipIf(redisMissing !== undefined)('a Redis outage under two replicas', () => {
  it.each(outages)(
    'Redis $name: no leader, quick 503s, nothing lost, a leader again after',
    async (outage) => {
      server = await startRedisServer();
      const s = (set = new ReplicaSet(server.url, 'outage:'));
      const logs = { a: recordingLogger(), b: recordingLogger() };
      const a = await s.replica('a', { logger: logs.a.logger });
      await until(async () => (await role(a.url)) === 'leader', 'a to lead');
      const b = await s.replica('b', { logger: logs.b.logger });
      const gate = new Gate();
      await s.worker('w1', [a.url, b.url], gate);
      await until(
        async () =>
          ((await (await fetch(`${a.url}/workers`)).json()) as unknown[]).length === 1 &&
          ((await (await fetch(`${b.url}/workers`)).json()) as unknown[]).length === 1,
        'the worker on both replicas',
      );

      // Running on the worker when Redis goes: a sync task (its producer waits on a) and an async one.
      const sync = runTask(a.url, 'out-sync', { hold: true });
      expect((await sendTask(b.url, 'out-async', { hold: true })).status).toBe(202);
      await until(() => gate.isHeld('out-sync') && gate.isHeld('out-async'), 'both tasks running');

      await outage.down(server);
      // The leader's lease guard runs out: neither replica leads, and both say they are not ready.
      for (const url of [a.url, b.url])
        await until(async () => {
          const r = await ready(url);
          return r.status === 503 && r.body.status === 'store_unreachable';
        }, `/ready 503 on ${url}`);
      await until(async () => (await role(a.url)) === 'standby', 'a to stop leading');
      expect(await role(b.url)).toBe('standby');
      const body = (await ready(a.url)).body as { error: { code: string } };
      expect(body.error.code).toBe('task_store_unavailable');

      // Producers on either replica get an answer, not a hang.
      for (const url of [a.url, b.url]) {
        await expectStoreUnavailable(await runTask(url, `refused-sync-${url}`));
        await expectStoreUnavailable(await sendTask(url, `refused-async-${url}`));
        await expectStoreUnavailable(await fetch(`${url}/tasks`));
        await expectStoreUnavailable(await fetch(`${url}/tasks/out-async`));
      }
      // /metrics still answers, and says so.
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      expect(metrics).toMatch(/^dispatcher_shared_store_up 0$/m);

      // The tasks finish while no replica can store their results.
      gate.release('out-sync');
      gate.release('out-async');

      await outage.up(server);
      await until(
        async () => [await role(a.url), await role(b.url)].filter((r) => r === 'leader').length === 1,
        'a leader again',
      );
      for (const url of [a.url, b.url])
        await until(async () => (await ready(url)).status === 200, `/ready 200 on ${url}`);

      // Nothing running at the outage is lost: the results the worker kept are written.
      const answer = await sync;
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as { result: unknown }).result).toEqual({ ran: 'out-sync' });
      await until(async () => (await taskStatus(b.url, 'out-async'))?.status === 'completed', 'async done');
      // Routing resumes through either replica.
      for (const url of [a.url, b.url]) {
        const res = await runTask(url, `after-${url}`);
        expect(res.status).toBe(200);
      }
      // A refused producer retries with the same task_id and gets one run: a frozen Redis may run
      // a write whose answer timed out when it thaws, so the refused task may be stored (and run)
      // already; the retry then gets its outcome instead of running it again.
      for (const url of [a.url, b.url]) {
        const retry = await runTask(url, `refused-sync-${url}`);
        expect(retry.status).toBe(200);
      }
      // No task ran twice (no split brain).
      for (const [id, runs] of gate.runs) expect(runs, id).toBe(1);
      expect(gate.runs.get('out-sync')).toBe(1);
      expect(gate.runs.get('out-async')).toBe(1);

      // One warning per outage on each replica; connection errors of the outage at debug level only.
      for (const { records } of [logs.a, logs.b]) {
        expect(records.filter((r) => r.event === 'shared_store_unreachable' && r.level === 40)).toHaveLength(
          1,
        );
        expect(records.filter((r) => r.event === 'shared_store_reachable')).toHaveLength(1);
        const loud = records.filter(
          (r) =>
            r.level >= 40 &&
            r.err !== undefined &&
            /timed out|closed|ECONNREFUSED|writeable|retries/i.test(String(r.err.message)),
        );
        expect(loud).toEqual([]);
      }
    },
  );
});
