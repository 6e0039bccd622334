/**
 * Failover chaos (issue 13, item 6): a real redis-server, 3 dispatcher replicas and 4 workers as
 * child processes; the workers link to every replica (DISPATCHER_URLS). Producers talk to every
 * replica, sync (POST /run-task), async (POST /send-task) and KServe v2 (POST /v2/models/m/infer,
 * forwarded through Redis by a standby; the workers' model server is a stand-in here), while the
 * leader is SIGKILLed three times (restarted each time as a new standby on its port) and once
 * SIGSTOPped for longer than the lease, then SIGCONTed.
 *
 *   leader dies ──> lease lapses (LEASE_TTL_MS) ──> a standby takes it (replica_leading, new token)
 *                ──> it routes its first task (task_routed)        = the failover time measured
 *
 * Measured per event from the replicas' own logs (pino `time`, same clock as ours): takeover (death
 * -> replica_leading) and failover (death -> the new leader's first task_routed). Counted: tasks
 * accepted, completed, failed with a reason, lost (neither), re-run (a task the workers ran twice,
 * from their task_completed logs; no worker dies here, so every re-run is the failover's).
 * A producer whose replica died retries the same task_id on the next replica (idempotent).
 *
 * Asserted: lost = 0 for sync tasks on replicas that survived the request and for every async task;
 * after the SIGCONT exactly one replica leads. `npm run test:chaos` writes CHAOS_FAILOVER_OUT
 * (benchmark/results/failover-chaos.json).
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@smart-routing/benchmark';
import {
  redisMissing,
  startRedisServer,
  type RedisServerHandle,
} from '../../dispatcher/test/support/redis-server.js';
import { running, startService, stopProcess, until } from './chaos-kit.js';

const REPLICAS = 3;
const WORKERS = 4;
/** Producers per replica and kind (sync, async). */
const PRODUCERS = 2;
/** How long a task runs on its worker: long enough that tasks are running at every kill. */
const TASK_MS = 30;
/** Completed tasks between two chaos events (steady state again, not a duration). */
const BETWEEN_EVENTS = Number(process.env.FAILOVER_CHAOS_BETWEEN ?? 60);
const LEASE_TTL_MS = 2000;
const SLEEP_HANDLER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'sleep-handler.mjs');

interface Replica {
  id: string;
  url: string;
  port: number;
  child: ChildProcess;
  /** Its current incarnation's log file. */
  log: string;
  incarnation: number;
  /** Down (killed, or stopped) since this time; undefined while it serves. */
  downSince?: number;
  /** Times it was killed or stopped. */
  downs: number;
}

interface FailoverEvent {
  kind: 'SIGKILL' | 'SIGSTOP';
  replica: string;
  /** Epoch ms of the signal. */
  at: number;
  newLeader?: string;
  /** Signal -> the new leader logged replica_leading. */
  takeoverMs?: number;
  /** Signal -> the new leader's first task_routed. */
  failoverMs?: number;
  /** SIGSTOP only: how long it was stopped. */
  stoppedMs?: number;
  /** Just before the signal, every live standby's fleet picture equalled the leader's. */
  picturesMatched?: boolean;
}

interface SyncTask {
  id: string;
  /** Replica of the first attempt. */
  origin: string;
  /** Its origin replica went down (killed or stopped) while the request was open, or was down. */
  originDied: boolean;
  attempts: number;
  outcome?: 'completed' | 'failed' | 'lost';
  code?: string;
}

interface V2Infer {
  /** The request's `id` (echoed by the model server). */
  id: string;
  origin: string;
  /** Its origin replica went down while the request was open, or was down. */
  originDied: boolean;
  attempts: number;
  outcome?: 'completed' | 'failed' | 'lost';
  code?: string;
}

/** How the producers' requests ended (sync /run-task or v2 infers): the report's counts. */
function countRequests(requests: readonly (SyncTask | V2Infer)[]) {
  const counts = {
    accepted: requests.length,
    completed: 0,
    failed: 0,
    reasons: {} as Record<string, number>,
    lost: 0,
    lostOnSurvivors: 0,
    retried: 0,
  };
  for (const t of requests) {
    if (t.attempts > 1) counts.retried++;
    if (t.outcome === 'completed') counts.completed++;
    else if (t.outcome === 'failed') {
      counts.failed++;
      counts.reasons[t.code!] = (counts.reasons[t.code!] ?? 0) + 1;
    } else {
      counts.lost++;
      if (!t.originDied) counts.lostOnSurvivors++;
    }
  }
  return counts;
}

interface Counts {
  replicas: number;
  workers: number;
  leaseTtlMs: number;
  events: FailoverEvent[];
  failoverMs: { max: number | null; mean: number | null };
  sync: {
    accepted: number;
    completed: number;
    failedWithReason: number;
    reasons: Record<string, number>;
    lost: number;
    /** Of those: sync tasks whose origin replica survived the request. */
    lostOnSurvivors: number;
    /** Requests cut by their replica's death and sent again (same task_id) to another. */
    retried: number;
  };
  async: {
    accepted: number;
    completed: number;
    failedWithReason: number;
    reasons: Record<string, number>;
    lost: number;
    resubmitted: number;
  };
  /** KServe v2 infers (no task_id: a request cut by its replica's death is sent again as a new infer). */
  v2: {
    accepted: number;
    completed: number;
    failed: number;
    reasons: Record<string, number>;
    lost: number;
    /** Of those: infers whose origin replica survived the request. */
    lostOnSurvivors: number;
    /** Requests answered 503 or cut, sent again to another replica. */
    retried: number;
  };
  /** Tasks the workers ran more than once. */
  reRun: number;
  /** Runs refused by a worker as `stale_leader` (an order from a deposed leader). */
  staleLeaderRefusals: number;
  /** After the SIGCONT: replicas reporting role leader (must be 1). */
  leadersAfterWakeUp: number;
}

let dir: string;
let redis: RedisServerHandle | undefined;
const children = new Set<ChildProcess>();
let result: Counts | undefined;
let modelServer: Server | undefined;

/**
 * The workers' model server: a stand-in for Triton holding model `m`, whose infer answers the
 * request's id and first input after TASK_MS (so infers are running at every kill).
 */
async function startModelServer(): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      const json = (value: unknown): void =>
        void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (url === '/v2/repository/index') return json([{ name: 'm', state: 'READY' }]);
      if (url === '/v2/models/m/infer') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          id: string;
          inputs: { data: number[] }[];
        };
        setTimeout(
          () =>
            json({
              model_name: 'm',
              id: body.id,
              outputs: [{ name: 'o', datatype: 'INT32', shape: [1], data: body.inputs[0]!.data }],
            }),
          TASK_MS,
        );
        return;
      }
      if (url === '/v2/models/m') return json({ name: 'm', inputs: [], outputs: [] });
      res.writeHead(200).end(); // health, ready, load, unload
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  modelServer = server;
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface ReadyBody {
  replica?: { id?: string; role?: string; leader_id?: string; epoch?: number };
}

async function roleOf(r: Replica): Promise<string | undefined> {
  if (r.downSince !== undefined || !running(r.child)) return undefined;
  try {
    const res = await fetch(`${r.url}/ready`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as ReadyBody).replica?.role;
  } catch {
    return undefined;
  }
}

/** A replica's fleet picture: its /workers without the moving in-flight counts, sorted by id. */
async function pictureOf(r: Replica): Promise<string> {
  const list = (await (await fetch(`${r.url}/workers`, { signal: AbortSignal.timeout(1000) })).json()) as {
    id: string;
    in_flight?: number;
  }[];
  return JSON.stringify(
    list.map(({ in_flight: _moving, ...rest }) => rest).sort((a, b) => a.id.localeCompare(b.id)),
  );
}

async function workerCount(r: Replica): Promise<number> {
  const list = (await (
    await fetch(`${r.url}/workers`, { signal: AbortSignal.timeout(1000) })
  ).json()) as unknown[];
  return list.length;
}

/** pino records of a log file with `event` (every incarnation's file of a replica when given several). */
async function records(files: string[], event: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const file of files) {
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes(`"${event}"`)) continue;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.event === event) out.push(rec);
      } catch {
        // a line cut by a SIGKILL
      }
    }
  }
  return out;
}

describe.skipIf(redisMissing !== undefined)('failover: 3 replicas, the leader killed and paused', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-failover-chaos-'));
    redis = await startRedisServer();
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...children].map((c) => stopProcess(c)));
    modelServer?.closeAllConnections();
    modelServer?.close();
    await redis?.stop();
    const out = process.env.CHAOS_FAILOVER_OUT ?? 'benchmark/results/failover-chaos.json';
    if (result) {
      await mkdir(dirname(out), { recursive: true });
      await writeFile(
        out,
        `${JSON.stringify({ command: 'npm run test:chaos -- failover', date: new Date().toISOString(), ...result }, null, 2)}\n`,
      );
    }
    if (dir && !process.env.KEEP_CHAOS_LOGS) await rm(dir, { recursive: true, force: true });
  });

  it('loses no accepted task across 3 leader kills and 1 pause; measures the failover time', async () => {
    const redisUrl = redis!.url;
    const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
    const replicas: Replica[] = [];
    const allLogs = new Map<string, string[]>();
    const launch = (id: string, port: number, incarnation: number): { child: ChildProcess; log: string } => {
      const log = join(dir, `${id}-${incarnation}.log`);
      allLogs.set(id, [...(allLogs.get(id) ?? []), log]);
      const child = startService(
        'dispatcher',
        {
          PORT: String(port),
          HOST: '127.0.0.1',
          GRPC_PORT: 'off',
          REDIS_URL: redisUrl,
          TASK_STORE: redisUrl,
          REPLICA_ID: id,
          LEASE_TTL_MS: String(LEASE_TTL_MS),
          HEARTBEAT_INTERVAL_MS: '300',
          WORKER_TIMEOUT_MS: '2000',
        },
        // debug: task_routed, the first order of a new leader, is logged at debug.
        { logFile: log, logLevel: 'debug', children },
      );
      return { child, log };
    };
    for (let i = 0; i < REPLICAS; i++) {
      const id = `replica-${i + 1}`;
      const { child, log } = launch(id, ports[i]!, 1);
      replicas.push({
        id,
        url: `http://127.0.0.1:${ports[i]}`,
        port: ports[i]!,
        child,
        log,
        incarnation: 1,
        downs: 0,
      });
      // One at a time, so replica-1 leads first.
      await until(`${id} up`, async () => (await fetch(`http://127.0.0.1:${ports[i]}/health`)).ok);
    }
    const workerLogs = Array.from({ length: WORKERS }, (_, i) => join(dir, `worker-${i + 1}.log`));
    const tritonUrl = await startModelServer();
    for (let i = 0; i < WORKERS; i++)
      startService(
        'worker',
        {
          DISPATCHER_URLS: replicas.map((r) => `ws://127.0.0.1:${r.port}`).join(','),
          WORKER_ID: `worker-${i + 1}`,
          WORKER_SLOTS: '2',
          TRITON_URL: tritonUrl,
          WORKER_HANDLERS: SLEEP_HANDLER,
        },
        { logFile: workerLogs[i]!, children },
      );
    const everyoneSeesTheFleet = async (): Promise<boolean> => {
      for (const r of replicas)
        if (r.downSince === undefined && (await workerCount(r)) !== WORKERS) return false;
      return true;
    };
    await until('every replica lists every worker', everyoneSeesTheFleet);
    const leaders = async (): Promise<Replica[]> => {
      const roles = await Promise.all(replicas.map(roleOf));
      return replicas.filter((_, i) => roles[i] === 'leader');
    };
    await until('one leader', async () => (await leaders()).length === 1);

    // ---- producers on every replica, sync and async, until told to stop ----
    const agent = new Agent({ connections: REPLICAS * PRODUCERS * 4 });
    let stopping = false;
    let seq = 0;
    let completedSinceEvent = 0;
    const syncTasks: SyncTask[] = [];
    const v2Infers: V2Infer[] = [];
    const asyncAccepted = new Set<string>();
    const asyncResubmitted = new Set<string>();
    const body = (id: string, n: number): string =>
      JSON.stringify({
        task_id: id,
        task_type: 'sleep',
        label: 'none',
        parameters_json: JSON.stringify({ ms: TASK_MS, n }),
      });
    const post = async (
      r: Replica,
      path: string,
      payload: string,
    ): Promise<{ status: number; json: { error?: { code?: string } } }> => {
      const res = await request(`${r.url}${path}`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: payload,
      });
      const text = await res.body.text();
      let json: { error?: { code?: string } } = {};
      try {
        json = JSON.parse(text) as typeof json;
      } catch {
        // not JSON: counted by status
      }
      return { status: res.statusCode, json };
    };
    /** The next replica after `i` that is up (a producer's fallback when its own died). */
    const nextUp = (i: number): number => {
      for (let k = 1; k <= REPLICAS; k++)
        if (replicas[(i + k) % REPLICAS]!.downSince === undefined) return (i + k) % REPLICAS;
      return (i + 1) % REPLICAS;
    };
    const syncProducer = async (home: number): Promise<void> => {
      while (!stopping) {
        const n = seq++;
        let at = home;
        const task: SyncTask = { id: `sync-${n}`, origin: replicas[at]!.id, originDied: false, attempts: 0 };
        syncTasks.push(task);
        const origin = replicas[at]!;
        const downsBefore = origin.downs;
        const originWasDown = origin.downSince !== undefined;
        for (;;) {
          task.attempts++;
          const r = replicas[at]!;
          try {
            const { status, json } = await post(r, '/run-task', body(task.id, n));
            if (status === 200) {
              task.outcome = 'completed';
              completedSinceEvent++;
            } else if (status === 503 && task.attempts < 30) {
              // Shutting down or not ready yet: the same task_id on the next replica.
              at = nextUp(at);
              await sleep(50);
              continue;
            } else {
              task.outcome = json.error?.code ? 'failed' : 'lost';
              task.code = json.error?.code ?? `http_${status}`;
            }
            break;
          } catch {
            // The connection died with the replica: retry the same id elsewhere.
            if (task.attempts >= 30) {
              task.outcome = 'lost';
              task.code = 'no_answer';
              break;
            }
            at = nextUp(at);
            await sleep(50);
          }
        }
        task.originDied = originWasDown || origin.downs !== downsBefore;
      }
    };
    const asyncProducer = async (home: number): Promise<void> => {
      while (!stopping) {
        const n = seq++;
        const id = `async-${n}`;
        let at = home;
        for (let attempt = 1; ; attempt++) {
          if (stopping && attempt > 1) return;
          try {
            const { status } = await post(replicas[at]!, '/send-task', body(id, n));
            if (status === 202 || status === 200) {
              asyncAccepted.add(id);
              break;
            }
            if (status !== 503) throw new Error(`send-task answered ${status}`);
          } catch (err) {
            if ((err as Error).message.startsWith('send-task answered')) throw err;
          }
          // Its replica is down (or draining): the same id on the next one.
          asyncResubmitted.add(id);
          if (attempt >= 30) throw new Error(`${id}: no replica accepted it`);
          at = nextUp(at);
          await sleep(50);
        }
        // A producer that polls for its outcome (on any replica), so the backlog stays bounded.
        for (;;) {
          try {
            const res = await request(`${replicas[at]!.url}/tasks/${id}`, { dispatcher: agent });
            const doc = (await res.body.json()) as { status?: string };
            if (doc.status === 'completed' || doc.status === 'failed') {
              completedSinceEvent++;
              break;
            }
          } catch {
            at = nextUp(at);
          }
          if (stopping) break;
          await sleep(50);
        }
      }
    };
    const v2Producer = async (home: number): Promise<void> => {
      while (!stopping) {
        const n = seq++;
        let at = home;
        const infer: V2Infer = { id: `infer-${n}`, origin: replicas[at]!.id, originDied: false, attempts: 0 };
        v2Infers.push(infer);
        const origin = replicas[at]!;
        const downsBefore = origin.downs;
        const originWasDown = origin.downSince !== undefined;
        const payload = JSON.stringify({
          id: infer.id,
          inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [n] }],
        });
        for (;;) {
          infer.attempts++;
          try {
            const res = await request(`${replicas[at]!.url}/v2/models/m/infer`, {
              method: 'POST',
              dispatcher: agent,
              headers: { 'content-type': 'application/json' },
              body: payload,
            });
            const text = await res.body.text();
            if (res.statusCode === 200) {
              const answer = JSON.parse(text) as { id?: string; outputs?: { data?: number[] }[] };
              if (answer.id === infer.id && answer.outputs?.[0]?.data?.[0] === n) {
                infer.outcome = 'completed';
                completedSinceEvent++;
              } else {
                infer.outcome = 'failed';
                infer.code = 'wrong_answer';
              }
            } else if (res.statusCode === 503 && infer.attempts < 30) {
              // Shutting down, or a leader that stepped down: the client sends it again elsewhere.
              at = nextUp(at);
              await sleep(50);
              continue;
            } else {
              infer.outcome = 'failed';
              infer.code = `http_${res.statusCode}`;
            }
            break;
          } catch {
            if (infer.attempts >= 30) {
              infer.outcome = 'lost';
              infer.code = 'no_answer';
              break;
            }
            at = nextUp(at);
            await sleep(50);
          }
        }
        infer.originDied = originWasDown || origin.downs !== downsBefore;
      }
    };
    const producing = replicas.flatMap((_, i) => [
      ...Array.from({ length: PRODUCERS }, () => v2Producer(i)),
      ...Array.from({ length: PRODUCERS }, () => syncProducer(i)),
      ...Array.from({ length: PRODUCERS }, () => asyncProducer(i)),
    ]);

    // A producer's error fails the test, after the others stopped.
    const producers = Promise.all(producing).finally(() => (stopping = true));
    producers.catch(() => undefined);

    // ---- chaos: SIGKILL the leader 3 times, then SIGSTOP it past the lease ----
    const events: FailoverEvent[] = [];
    const t0 = Date.now();
    const progress = (what: string): void => {
      process.stderr.write(`[failover chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);
    };
    const steady = async (): Promise<void> => {
      completedSinceEvent = 0;
      await until(
        `${BETWEEN_EVENTS} tasks completed`,
        async () => completedSinceEvent >= BETWEEN_EVENTS || stopping,
        60_000,
      );
      progress(`${completedSinceEvent} tasks completed since the last step`);
    };
    try {
      await steady();
      for (const kind of ['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGSTOP'] as const) {
        const [leader] = await leaders();
        expect(leader, 'a leader before the event').toBeDefined();
        // The standby that takes over must already know the fleet as the leader does.
        const standbys = replicas.filter((r) => r !== leader && r.downSince === undefined);
        // Labels move while tasks run (a load or unload event is on its way to every replica), so
        // the pictures are read again until they agree, for at most 3 s.
        let pictures: string[] = [];
        let picturesMatched = false;
        for (const deadline = Date.now() + 3000; !picturesMatched && Date.now() < deadline;) {
          pictures = await Promise.all([leader!, ...standbys].map(pictureOf));
          picturesMatched = pictures.every((p) => p === pictures[0]);
          if (!picturesMatched) await sleep(50);
        }
        if (!picturesMatched) progress(`pictures differ: ${pictures.join(' | ')}`);
        const event: FailoverEvent = { kind, replica: leader!.id, at: Date.now(), picturesMatched };
        leader!.downSince = event.at;
        leader!.downs++;
        leader!.child.kill(kind);
        events.push(event);
        progress(`${kind} ${leader!.id}`);
        await until('a new leader', async () => (await leaders()).some((l) => l.id !== leader!.id), 30_000);
        if (kind === 'SIGKILL') {
          await stopProcess(leader!.child, 'SIGKILL');
          leader!.incarnation++;
          const { child, log } = launch(leader!.id, leader!.port, leader!.incarnation);
          leader!.child = child;
          leader!.log = log;
          await until(`${leader!.id} back`, async () => (await fetch(`${leader!.url}/health`)).ok);
          leader!.downSince = undefined;
          await until('every replica lists every worker again', everyoneSeesTheFleet);
          await steady();
        } else {
          // Stopped past the lease: the new leader routes meanwhile; then the old one wakes up.
          await steady();
          event.stoppedMs = Date.now() - event.at;
          leader!.child.kill('SIGCONT');
          leader!.downSince = undefined;
          await until('one leader after the wake-up', async () => {
            const now = await leaders();
            return now.length === 1 && (await roleOf(leader!)) === 'standby';
          });
          await steady();
        }
      }
    } catch (err) {
      // Keep the logs to look at: KEEP_CHAOS_LOGS=1.
      progress(`failed: ${(err as Error).message}; logs in ${dir}`);
      if (process.env.KEEP_CHAOS_LOGS) dir = '';
      stopping = true;
      await producers.catch(() => undefined);
      throw err;
    }
    const leadersAfterWakeUp = (await leaders()).length;

    stopping = true;
    await producers;
    // Every async task ends (the store is the truth).
    const live = replicas.find((r) => r.downSince === undefined)!;
    const docOf = async (
      id: string,
    ): Promise<{ status?: string; error?: { code?: string; message?: string } | null }> =>
      (await (await fetch(`${live.url}/tasks/${id}`)).json()) as {
        status?: string;
        error?: { code?: string; message?: string } | null;
      };
    const asyncIds = [...asyncAccepted];
    const pending = new Set(asyncIds);
    await until(
      'every async task ended',
      async () => {
        for (const id of [...pending]) {
          const doc = await docOf(id);
          if (doc.status === 'completed' || doc.status === 'failed') pending.delete(id);
        }
        return pending.size === 0;
      },
      90_000,
    ).catch(() => undefined); // what is still pending counts as lost below
    await agent.close();

    // ---- count ----
    const asyncCounts = {
      accepted: asyncIds.length,
      completed: 0,
      failedWithReason: 0,
      reasons: {} as Record<string, number>,
      lost: 0,
      resubmitted: asyncResubmitted.size,
    };
    for (const id of asyncIds) {
      const doc = await docOf(id);
      if (doc.status === 'completed') asyncCounts.completed++;
      else if (doc.status === 'failed' && doc.error?.code && doc.error.message) {
        asyncCounts.failedWithReason++;
        asyncCounts.reasons[doc.error.code] = (asyncCounts.reasons[doc.error.code] ?? 0) + 1;
      } else asyncCounts.lost++;
    }
    const sync = countRequests(syncTasks);
    const syncCounts = {
      accepted: sync.accepted,
      completed: sync.completed,
      failedWithReason: sync.failed,
      reasons: sync.reasons,
      lost: sync.lost,
      lostOnSurvivors: sync.lostOnSurvivors,
      retried: sync.retried,
    };
    const v2Counts = countRequests(v2Infers);

    // Failover times from the replicas' logs.
    for (const e of events) {
      let best: { id: string; time: number } | undefined;
      for (const r of replicas) {
        if (r.id === e.replica) continue;
        const leading = (await records(allLogs.get(r.id)!, 'replica_leading')).filter(
          (x) => Number(x.time) >= e.at,
        );
        const first = leading[0];
        if (first && (!best || Number(first.time) < best.time)) best = { id: r.id, time: Number(first.time) };
      }
      if (!best) continue;
      e.newLeader = best.id;
      e.takeoverMs = best.time - e.at;
      const routed = (await records(allLogs.get(best.id)!, 'task_routed')).find(
        (x) => Number(x.time) >= best!.time,
      );
      if (routed) e.failoverMs = Number(routed.time) - e.at;
    }
    const failovers = events.map((e) => e.failoverMs).filter((x): x is number => x !== undefined);

    // Re-runs and stale-leader refusals from the workers' logs.
    const runs = new Map<string, number>();
    let staleLeaderRefusals = 0;
    for (const rec of await records(workerLogs, 'task_completed')) {
      const id = rec.task_id as string | undefined;
      if (rec.error_code === 'stale_leader') staleLeaderRefusals++;
      // Refusals (draining, no_slot, stale_leader) ran nothing.
      if (id && rec.ok) runs.set(id, (runs.get(id) ?? 0) + 1);
    }

    result = {
      replicas: REPLICAS,
      workers: WORKERS,
      leaseTtlMs: LEASE_TTL_MS,
      events,
      failoverMs: {
        max: failovers.length > 0 ? Math.max(...failovers) : null,
        mean:
          failovers.length > 0 ? Math.round(failovers.reduce((a, b) => a + b, 0) / failovers.length) : null,
      },
      sync: syncCounts,
      async: asyncCounts,
      v2: v2Counts,
      reRun: [...runs.values()].filter((n) => n > 1).length,
      staleLeaderRefusals,
      leadersAfterWakeUp,
    };

    // The counts add up, so a lost task cannot hide.
    expect(syncCounts.completed + syncCounts.failedWithReason + syncCounts.lost).toBe(syncCounts.accepted);
    expect(asyncCounts.completed + asyncCounts.failedWithReason + asyncCounts.lost).toBe(
      asyncCounts.accepted,
    );
    expect(syncCounts.accepted).toBeGreaterThan(BETWEEN_EVENTS);
    expect(asyncCounts.accepted).toBeGreaterThan(BETWEEN_EVENTS);
    expect(
      events.every((e) => e.newLeader !== undefined),
      JSON.stringify(events),
    ).toBe(true);
    expect(v2Counts.completed + v2Counts.failed + v2Counts.lost).toBe(v2Counts.accepted);
    expect(v2Counts.accepted).toBeGreaterThan(BETWEEN_EVENTS);
    expect(syncCounts.lostOnSurvivors, JSON.stringify(syncCounts)).toBe(0);
    expect(v2Counts.lostOnSurvivors, JSON.stringify(v2Counts)).toBe(0);
    expect(v2Counts.failed, JSON.stringify(v2Counts)).toBe(0);
    expect(asyncCounts.lost, JSON.stringify(asyncCounts)).toBe(0);
    expect(leadersAfterWakeUp).toBe(1);
    expect(
      events.every((e) => e.picturesMatched === true),
      JSON.stringify(events),
    ).toBe(true);
  }, 400_000);
});
