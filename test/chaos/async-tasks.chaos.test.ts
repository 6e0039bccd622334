/**
 * Chaos for async tasks (issue 12): producers submit >= 1,000 tasks to POST /send-task while two
 * real workers (embedded model servers) run them; with tasks queued and running, the dispatcher
 * is SIGKILLed and started again on the same task store. Every accepted task must end
 * `completed` (or `failed` with a reason): lost must be 0. A producer whose request died with the
 * dispatcher retries the same task_id (idempotent). Duplicates run (a task that was running at the
 * kill runs again: at least once) are counted from the workers' `task_completed` logs.
 *
 * Once with the SQLite store (a file), once with Redis (a real redis-server, when installed).
 * `npm run test:chaos` runs it and writes ASYNC_CHAOS_OUT (benchmark/results/async-chaos.json).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoModels } from '@smart-routing/model-repo';
import { freePort } from '@smart-routing/benchmark';
import {
  redisMissing,
  startRedisServer,
  type RedisServerHandle,
} from '../../dispatcher/test/support/redis-server.js';
import { startService, stopProcess as stop, until } from './chaos-kit.js';

const TASKS = Number(process.env.ASYNC_CHAOS_TASKS ?? 1200);
const PRODUCERS = 16;
const LABELS = ['label-1', 'label-2', 'label-3'];

interface Counts {
  store: string;
  tasks: number;
  accepted: number;
  /** Unfinished (queued or running) in the store when the dispatcher was killed. */
  unfinishedAtKill: number;
  completed: number;
  failedWithReason: number;
  reasons: Record<string, number>;
  /** Tasks the workers ran more than once (at least once delivery across the kill). */
  duplicatesRun: number;
  lost: number;
  /** Tasks whose /send-task was cut by the kill and sent again with the same task_id. */
  resubmitted: number;
}

let dir: string;
const children = new Set<ChildProcess>();
const results: Counts[] = [];

function start(pkg: string, env: Record<string, string>, logFile?: string): ChildProcess {
  return startService(pkg, env, { ...(logFile ? { logFile } : {}), children });
}

async function runScenario(store: string, taskStore: string): Promise<Counts> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const run = `${store}-${Date.now()}`;
  const startDispatcher = (): ChildProcess =>
    start('dispatcher', {
      PORT: String(port),
      // The gRPC front's default port (8081) would collide with other tests' dispatchers.
      GRPC_PORT: 'off',
      HOST: '127.0.0.1',
      MODEL_REPOSITORY: join(dir, 'models'),
      TASK_STORE: taskStore,
      HEARTBEAT_INTERVAL_MS: '300',
      WORKER_TIMEOUT_MS: '2000',
    });
  const workerLogs = [join(dir, `${run}-w1.log`), join(dir, `${run}-w2.log`)];
  let dispatcher = startDispatcher();
  await until('dispatcher', async () => (await fetch(`${url}/health`)).ok);
  const workers = ['w1', 'w2'].map((id, i) =>
    start(
      'worker',
      {
        DISPATCHER_URL: `ws://127.0.0.1:${port}`,
        WORKER_ID: `${run}-${id}`,
        WORKER_MAX_LABELS: '2',
        WORKER_SLOTS: '2',
        MODEL_REPOSITORY: join(dir, 'models'),
      },
      workerLogs[i],
    ),
  );
  await until('workers', async () => {
    const list = (await (await fetch(`${url}/workers`)).json()) as unknown[];
    return list.length === 2;
  });

  const counts: Counts = {
    store,
    tasks: TASKS,
    accepted: 0,
    unfinishedAtKill: 0,
    completed: 0,
    failedWithReason: 0,
    reasons: {},
    duplicatesRun: 0,
    lost: 0,
    resubmitted: 0,
  };
  const agent = new Agent({ connections: PRODUCERS * 2 });
  const accepted = new Set<string>();
  const resubmitted = new Set<string>();
  const ids = Array.from({ length: TASKS }, (_, i) => `${run}-${i}`);
  let next = 0;
  let killed = false;
  const submit = async (i: number): Promise<void> => {
    const id = ids[i]!;
    for (;;) {
      try {
        const res = await request(`${url}/send-task`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            task_id: id,
            task_type: 'embed_texts',
            label: LABELS[i % LABELS.length],
            parameters_json: JSON.stringify({ texts: [`async chaos ${i}`] }),
            priority: i % 10,
          }),
        });
        await res.body.text();
        // 202 accepted, 200: a retry found it already accepted.
        if (res.statusCode === 202 || res.statusCode === 200) {
          accepted.add(id);
          return;
        }
        throw new Error(`send-task answered ${res.statusCode}`);
      } catch (err) {
        // The dispatcher is down (killed): the producer retries the same id once it is back.
        if (!killed) throw err;
        resubmitted.add(id);
        await sleep(100);
      }
    }
  };
  const producers = Array.from({ length: PRODUCERS }, async () => {
    for (let i = next++; i < TASKS; i = next++) await submit(i);
  });

  // Kill once most tasks were accepted and the workers are busy with them.
  await until('1,000 accepted', async () => accepted.size >= Math.min(1000, TASKS), 120_000);
  const unfinished = async (): Promise<number> => {
    let n = 0;
    for (const status of ['queued', 'running']) {
      let cursor: string | null = null;
      do {
        const q: string = `${url}/tasks?status=${status}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = (await (await fetch(q)).json()) as { tasks: unknown[]; next_cursor: string | null };
        n += page.tasks.length;
        cursor = page.next_cursor;
      } while (cursor);
    }
    return n;
  };
  counts.unfinishedAtKill = await unfinished();
  killed = true;
  await stop(dispatcher, 'SIGKILL');
  dispatcher = startDispatcher();
  await until('dispatcher back', async () => (await fetch(`${url}/health`)).ok);
  await Promise.all(producers);
  counts.accepted = accepted.size;
  counts.resubmitted = resubmitted.size;

  // Every accepted task ends.
  await until('all tasks ended', async () => (await unfinished()) === 0, 300_000);
  for (const id of accepted) {
    const doc = (await (await fetch(`${url}/tasks/${id}`)).json()) as {
      status?: string;
      error?: { code: string; message: string } | null;
    };
    if (doc.status === 'completed') counts.completed++;
    else if (doc.status === 'failed' && doc.error?.code && doc.error.message) {
      counts.failedWithReason++;
      counts.reasons[doc.error.code] = (counts.reasons[doc.error.code] ?? 0) + 1;
    } else counts.lost++;
  }
  await agent.close();
  await stop(dispatcher);
  await Promise.all(workers.map((w) => stop(w)));

  const runs = new Map<string, number>();
  for (const file of workerLogs)
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (!line.includes('"task_completed"')) continue;
      const entry = JSON.parse(line) as { task_id?: string; ok?: boolean; error_code?: string };
      // Refusals (draining, no_slot) ran nothing.
      if (entry.task_id && (entry.ok || entry.error_code === 'inference_failed'))
        runs.set(entry.task_id, (runs.get(entry.task_id) ?? 0) + 1);
    }
  counts.duplicatesRun = [...runs.values()].filter((n) => n > 1).length;
  return counts;
}

describe('async tasks survive a dispatcher SIGKILL', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-async-chaos-'));
    await generateDemoModels({ dir: join(dir, 'models'), count: LABELS.length, sizeMb: 2 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...children].map((c) => stop(c)));
    const out = process.env.ASYNC_CHAOS_OUT;
    if (out && results.length > 0) {
      await mkdir(dirname(out), { recursive: true });
      await writeFile(
        out,
        `${JSON.stringify({ command: 'npm run test:chaos', date: new Date().toISOString(), results }, null, 2)}\n`,
      );
    }
    await rm(dir, { recursive: true, force: true });
  });

  const check = (c: Counts): void => {
    expect(c.accepted).toBe(TASKS);
    expect(c.unfinishedAtKill).toBeGreaterThan(0);
    expect(c.completed + c.failedWithReason + c.lost).toBe(c.accepted);
    expect(c.lost).toBe(0);
    expect(c.completed, JSON.stringify(c.reasons)).toBeGreaterThan(c.accepted * 0.95);
  };

  it('SQLite store', async () => {
    const counts = await runScenario('sqlite', `sqlite:${join(dir, 'tasks.sqlite')}`);
    results.push(counts);
    check(counts);
  }, 600_000);

  it.skipIf(redisMissing !== undefined)(
    'Redis store',
    async () => {
      let redis: RedisServerHandle | undefined;
      try {
        redis = await startRedisServer();
        const counts = await runScenario('redis', redis.url);
        results.push(counts);
        check(counts);
      } finally {
        await redis?.stop();
      }
    },
    600_000,
  );
});
