/**
 * Workers anywhere (issue 14): a worker on "another machine" joins the dispatcher through a
 * non-loopback address with a WORKER_TOKEN. The other machine is a network namespace of its own
 * (`ip netns`, from iproute2) joined to this one by a veth pair on a private /30 of 10.200.0.0/16;
 * the dispatcher listens on the host end's address only (not 0.0.0.0), which makes the token
 * mandatory. The worker is the real CLI (built dist/) with its embedded model server, run by
 * `ip netns exec`, as the README's multi-machine recipe runs it.
 *
 *   host netns                                   test netns (<ns>)
 *   dispatcher 10.200.N.1:<port>  <── veth ──>   10.200.N.2  worker CLI ── lo ── model server
 *
 * Needs root (CAP_NET_ADMIN) and `ip`: beforeAll tries once to build the namespace pair and every
 * test skips, saying why, where it cannot. Only the namespace and veth pair made here are touched
 * (names unique per run), and afterAll removes them even when a test failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { generateDemoModels } from '@smart-routing/model-repo';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'worker/dist/cli.js');
const TOKEN = randomBytes(24).toString('hex');

// Unique per run: a veth name has at most 15 characters.
const tag = randomBytes(4).toString('hex');
const NS = `sr-netns-${tag}`;
const VETH_HOST = `srh${tag}`;
const VETH_NS = `srn${tag}`;

/** Runs `ip <args>` (optionally inside the test namespace); throws with its stderr on failure. */
function ip(args: string[], inNs = false): string {
  const argv = inNs ? ['netns', 'exec', NS, 'ip', ...args] : args;
  const r = spawnSync('ip', argv, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`ip ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** A /30 in 10.200.0.0/16 that no interface of this host uses yet. */
function freeSubnet(): number {
  const used = ip(['-o', '-4', 'addr', 'show']);
  for (;;) {
    const n = randomBytes(1)[0]!;
    if (!used.includes(`10.200.${n}.`)) return n;
  }
}

let made = { ns: false, veth: false };
let hostIp = '';
let nsIp = '';
let skipReason: string | undefined;

/** Builds the namespace pair; on any failure undoes what it made and returns why. */
function makeNamespaces(): string | undefined {
  try {
    const n = freeSubnet();
    hostIp = `10.200.${n}.1`;
    nsIp = `10.200.${n}.2`;
    ip(['netns', 'add', NS]);
    made.ns = true;
    ip(['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS]);
    made.veth = true;
    ip(['link', 'set', VETH_NS, 'netns', NS]);
    ip(['addr', 'add', `${hostIp}/30`, 'dev', VETH_HOST]);
    ip(['link', 'set', VETH_HOST, 'up']);
    ip(['addr', 'add', `${nsIp}/30`, 'dev', VETH_NS], true);
    ip(['link', 'set', VETH_NS, 'up'], true);
    // The worker reaches its own model server over the namespace's loopback.
    ip(['link', 'set', 'lo', 'up'], true);
    return undefined;
  } catch (err) {
    removeNamespaces();
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? '`ip` is not installed (apt-get install iproute2)' : e.message;
  }
}

/** Removes the namespace and the veth pair made here (and only those); safe to call twice. */
function removeNamespaces(): void {
  if (made.ns) {
    // Anything still running inside is one of this test's processes.
    const pids = spawnSync('ip', ['netns', 'pids', NS], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', NS]);
  }
  // Deleting the namespace deletes its veth end and so the pair; this covers a failed move.
  if (made.veth) spawnSync('ip', ['link', 'del', VETH_HOST], { stdio: 'ignore' });
  made = { ns: false, veth: false };
}

interface Spawned {
  child: ChildProcess;
  stderr: () => string;
}

/** The worker CLI inside the test namespace, configured by flags only (as on another machine). */
function spawnNetnsWorker(args: string[]): Spawned {
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ORT_DISABLE_TELEMETRY: '1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, stderr: () => stderr };
}

/** SIGTERM (the worker drains and stops its model server), SIGKILL if it lingers. */
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 45_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const logLines: Record<string, unknown>[] = [];
const dispatcherLogger = pino(
  { level: 'info' },
  { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
);

let dir = '';
let dispatcher: DispatcherHandle | undefined;
const children: ChildProcess[] = [];

const workerIds = async (): Promise<string[]> =>
  ((await (await fetch(`${dispatcher!.url}/workers`)).json()) as { id: string }[]).map((w) => w.id);

beforeAll(async () => {
  skipReason = makeNamespaces();
  if (skipReason) {
    console.warn(`worker network-namespace test skipped: cannot make a network namespace: ${skipReason}`);
    return;
  }
  dir = await mkdtemp(join(tmpdir(), 'sr-netns-'));
  await generateDemoModels({ dir: join(dir, 'models'), count: 1, sizeMb: 2 });
}, 60_000);

afterAll(async () => {
  await Promise.all(children.map((c) => stop(c)));
  await dispatcher?.close();
  removeNamespaces();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('a worker in another network namespace, through a non-loopback address', () => {
  it('the dispatcher refuses to listen on that address without a worker token', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    await expect(
      startDispatcher({ host: hostIp, port: 0, logger: pino({ level: 'silent' }) }),
    ).rejects.toThrow(/WORKER_TOKEN/);
  });

  it('refuses a worker without the token (401), registers one with it and runs its task', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    dispatcher = await startDispatcher({
      host: hostIp,
      port: 0,
      workerToken: TOKEN,
      modelRepository: join(dir, 'models'),
      logger: dispatcherLogger,
    });
    expect(dispatcher.url).toMatch(new RegExp(`^http://${hostIp.replaceAll('.', '\\.')}:\\d+$`));
    // http:// as in the README's recipe (the worker speaks WebSocket to it).
    const url = dispatcher.url;

    // No token: the upgrade gets 401 and the worker keeps retrying, never registered.
    const intruder = spawnNetnsWorker([
      '--dispatcher-url',
      url,
      '--worker-id',
      'netns-no-token',
      '--triton-url',
      'none',
    ]);
    children.push(intruder.child);
    await until('the refusal of the worker without a token', () =>
      logLines.some((l) => l.event === 'worker_refused' && l.worker_id === 'netns-no-token'),
    );
    expect(logLines.find((l) => l.event === 'worker_refused')).toMatchObject({
      code: 'unauthorized',
      status: 401,
      worker_id: 'netns-no-token',
      // It came over the veth pair from the other namespace.
      remote_address: nsIp,
    });
    await until('the worker to log the refusal', () => intruder.stderr().includes('401'));
    expect(intruder.stderr()).toContain('"event":"dispatcher_link_error"');
    expect(await workerIds()).not.toContain('netns-no-token');
    await stop(intruder.child);

    // With the token (the CLI flag), and its own embedded model server inside the namespace.
    const worker = spawnNetnsWorker([
      '--dispatcher-url',
      url,
      '--worker-token',
      TOKEN,
      '--worker-id',
      'netns-1',
      '--model-repository',
      join(dir, 'models'),
    ]);
    children.push(worker.child);
    await until('the worker with the token to register', async () => {
      if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${worker.stderr()}`);
      return (await workerIds()).includes('netns-1');
    });
    expect(logLines.find((l) => l.event === 'worker_joined')).toMatchObject({ worker_id: 'netns-1' });

    const res = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        task_id: 'netns-task-1',
        task_type: 'embed_texts',
        label: 'label-1',
        parameters_json: JSON.stringify({ texts: ['hello from another namespace'] }),
      }),
    });
    const body = (await res.json()) as {
      status: string;
      worker_id: string;
      label_miss: boolean;
      result: { embeddings: number[][]; dimensions: number };
    };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ status: 'completed', worker_id: 'netns-1', label_miss: true });
    const [vec] = body.result.embeddings;
    expect(vec).toHaveLength(body.result.dimensions);
    expect(Math.hypot(...vec!)).toBeCloseTo(1, 5);
    expect(await workerIds()).toEqual(['netns-1']);
  }, 120_000);
});
