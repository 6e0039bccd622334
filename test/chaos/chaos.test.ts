/**
 * Chaos: steady load from several producers while the test SIGKILLs a worker and starts a new
 * one, kills a worker's model server, drains a worker, and restarts the dispatcher. Every request
 * must end in a result or an error that names its cause; lost (no answer at all) must be 0.
 *
 * `npm test` runs it small; `npm run test:chaos` runs it longer (CHAOS_SECONDS) and writes the
 * counts to CHAOS_OUT (benchmark/results/chaos.json), which the README shows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoModels } from '@smart-routing/model-repo';
import { freePort, promSum } from '@smart-routing/benchmark';

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 12);
const PRODUCERS = Number(process.env.CHAOS_PRODUCERS ?? 4);
const LABELS = ['label-1', 'label-2', 'label-3'];
const cli = (pkg: string): string =>
  join(dirname(fileURLToPath(import.meta.resolve(`@smart-routing/${pkg}`))), 'cli.js');

interface Counts {
  sent: number;
  /** Taken in by a dispatcher: everything but connection refusals and 503 shutting_down. */
  accepted: number;
  completed: number;
  /** Completed after the dispatcher restart: the fleet must come back, not just the process. */
  completedAfterRestart: number;
  failedWithReason: number;
  lost: number;
  retried: number;
  reasons: Record<string, number>;
  events: string[];
}

let dir: string;
let port: number;
const children = new Set<ChildProcess>();
const dispatcherMetrics: string[] = [];

// CHAOS_LOG_DIR=<dir>: every child's logs (info) go to <dir>/<pkg>-<pid>.log for a post-mortem.
function start(pkg: string, env: Record<string, string>): ChildProcess {
  const logDir = process.env.CHAOS_LOG_DIR;
  const child = spawn(process.execPath, [cli(pkg)], {
    env: { ...process.env, LOG_LEVEL: logDir ? 'info' : 'error', ...env },
    stdio: ['ignore', 'ignore', logDir ? 'pipe' : 'inherit'],
  });
  if (logDir && child.stderr) child.stderr.pipe(createWriteStream(join(logDir, `${pkg}-${child.pid}.log`)));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const url = (): string => `http://127.0.0.1:${port}`;
const startDispatcher = (): ChildProcess =>
  start('dispatcher', {
    PORT: String(port),
    // The gRPC front's default port (8081) would collide with other tests' dispatchers.
    GRPC_PORT: 'off',
    HOST: '127.0.0.1',
    MODEL_REPOSITORY: join(dir, 'models'),
    MAX_ATTEMPTS: '3',
    HEARTBEAT_INTERVAL_MS: '300',
    WORKER_TIMEOUT_MS: '2000',
    SHUTDOWN_GRACE_MS: '8000',
    TASK_TIMEOUT_MS: '30000',
    // Task ids repeat across runs: a kept result must not answer the next run's task.
    TASK_STORE: 'memory',
  });
const startWorker = (id: string): ChildProcess =>
  start('worker', {
    DISPATCHER_URL: `ws://127.0.0.1:${port}`,
    WORKER_ID: id,
    WORKER_MAX_LABELS: '2',
    WORKER_SLOTS: '2',
    MODEL_REPOSITORY: join(dir, 'models'),
  });
const workersUp = async (ids: string[]): Promise<boolean> => {
  const list = (await (await fetch(`${url()}/workers`)).json()) as { id: string }[];
  return ids.every((id) => list.some((w) => w.id === id));
};

/** Children of a process (the worker's model server), from /proc. */
async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

describe('chaos', () => {
  let dispatcher: ChildProcess;
  const workers = new Map<string, ChildProcess>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-chaos-'));
    await generateDemoModels({ dir: join(dir, 'models'), count: LABELS.length, sizeMb: 2 });
    port = await freePort();
    dispatcher = startDispatcher();
    await until('dispatcher', async () => (await fetch(`${url()}/health`)).ok);
    for (const id of ['w1', 'w2', 'w3']) workers.set(id, startWorker(id));
    await until('workers', () => workersUp(['w1', 'w2', 'w3']));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...children].map((c) => stop(c)));
    await rm(dir, { recursive: true, force: true });
  });

  it('loses no task while workers, model servers and the dispatcher fail', async () => {
    const counts: Counts = {
      sent: 0,
      accepted: 0,
      completed: 0,
      completedAfterRestart: 0,
      failedWithReason: 0,
      lost: 0,
      retried: 0,
      reasons: {},
      events: [],
    };
    const agent = new Agent({ connections: PRODUCERS * 2 });
    let running = true;
    let restarted = false;
    const reason = (r: string): void => {
      counts.failedWithReason++;
      counts.reasons[r] = (counts.reasons[r] ?? 0) + 1;
    };
    const producer = async (p: number): Promise<void> => {
      for (let i = 0; running; i++) {
        counts.sent++;
        const label = LABELS[(p + i) % LABELS.length]!;
        try {
          const res = await request(`${url()}/run-task`, {
            method: 'POST',
            dispatcher: agent,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              task_id: `c-${p}-${i}`,
              task_type: 'embed_texts',
              label,
              parameters_json: JSON.stringify({ texts: [`chaos ${p} ${i}`] }),
            }),
            headersTimeout: 60_000,
            bodyTimeout: 60_000,
          });
          const body = (await res.body.json()) as {
            result?: { embeddings?: number[][] };
            error?: { code?: string; message?: string };
          };
          if (res.statusCode === 200 && body.result?.embeddings?.length === 1) {
            counts.completed++;
            if (restarted) counts.completedAfterRestart++;
          } else if (res.statusCode !== 200 && body.error?.code && body.error.message)
            reason(`${res.statusCode} ${body.error.code}`);
          else counts.lost++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          // Timeouts mean nobody answered: that is a lost task. Connection errors name their cause.
          if (!code || code.includes('TIMEOUT')) counts.lost++;
          else reason(`transport ${code}`);
          await sleep(50);
        }
        await sleep(10);
      }
    };
    const scrape = async (): Promise<void> => {
      try {
        dispatcherMetrics.push(await (await fetch(`${url()}/metrics`)).text());
      } catch {
        // the dispatcher is restarting
      }
    };
    const load = Array.from({ length: PRODUCERS }, (_, p) => producer(p));
    const step = SECONDS / 6;

    await sleep(step * 1000);
    counts.events.push('SIGKILL worker w1, start w4');
    workers.get('w1')!.kill('SIGKILL');
    workers.set('w4', startWorker('w4'));

    await sleep(step * 1000);
    const w2 = workers.get('w2')!;
    const modelServers = await childPids(w2.pid!);
    counts.events.push(`SIGKILL model server of w2 (pids ${modelServers.join(',')})`);
    for (const pid of modelServers) process.kill(pid, 'SIGKILL');

    await sleep(step * 1000);
    counts.events.push('SIGTERM (drain) worker w3, start w5');
    const drained = stop(workers.get('w3')!);
    workers.set('w5', startWorker('w5'));
    await drained;

    await sleep(step * 1000);
    counts.events.push('restart the dispatcher (SIGTERM, then a new process on the same port)');
    await scrape();
    await stop(dispatcher);
    dispatcher = startDispatcher();
    await until('dispatcher back', async () => (await fetch(`${url()}/health`)).ok);
    await until('workers re-registered', () => workersUp(['w2', 'w4', 'w5']));
    restarted = true;

    await sleep(step * 1000);
    running = false;
    await Promise.all(load);
    await scrape();
    await agent.close();
    const refused = Object.entries(counts.reasons)
      .filter(([r]) => r.startsWith('transport ') || r === '503 shutting_down')
      .reduce((sum, [, n]) => sum + n, 0);
    counts.accepted = counts.sent - refused;
    counts.retried = dispatcherMetrics.reduce(
      (sum, text) => sum + promSum(text, 'smart_routing_task_retries_total'),
      0,
    );

    const out = process.env.CHAOS_OUT;
    if (out) {
      await mkdir(dirname(out), { recursive: true });
      await writeFile(
        out,
        `${JSON.stringify({ command: 'npm run test:chaos', date: new Date().toISOString(), seconds: SECONDS, producers: PRODUCERS, ...counts }, null, 2)}\n`,
      );
    }
    expect(counts.sent).toBe(counts.completed + counts.failedWithReason + counts.lost);
    expect(counts.lost).toBe(0);
    // Regression: workers drained for the old dispatcher stayed draining, so nothing ran after a restart.
    expect(counts.completedAfterRestart).toBeGreaterThan(0);
    expect(counts.reasons['504 task_timeout'] ?? 0).toBe(0);
    // Of the tasks a dispatcher accepted, at least 90% completed. Refusals while the dispatcher
    // restarts (connection refused, 503 shutting_down) are not tasks: their number depends on how
    // long the restart takes on a loaded machine, so the share is of accepted tasks, not of sends
    // (issue 11: "more than half of sent" failed under load with no task lost).
    expect(counts.accepted).toBeGreaterThan(0);
    expect(counts.completed, `failure reasons: ${JSON.stringify(counts.reasons)}`).toBeGreaterThanOrEqual(
      0.9 * counts.accepted,
    );
  }, 180_000);
});
