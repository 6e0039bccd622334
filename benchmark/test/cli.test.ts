/**
 * The benchmark CLI (built dist/) as a user runs it, against a live dispatcher with a real worker
 * (`--dispatcher-url`, so no stack is started): flags given win over a preset and the run says so,
 * progress lines reach stderr from the first phase on (none with --quiet), conflicting modes are
 * refused with a reason. A whole `--quick` run takes minutes on this shared machine, so it is run
 * by hand (README, "A quick look").
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { generateDemoModels } from '@smart-routing/model-repo';
import { startWorker, type WorkerHandle } from '@smart-routing/worker';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const silent = pino({ level: 'silent' });

async function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ORT_DISABLE_TELEMETRY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

let dir: string;
let dispatcher: DispatcherHandle;
let worker: WorkerHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-bench-cli-'));
  const models = join(dir, 'models');
  await generateDemoModels({ dir: models, count: 5, sizeMb: 1 });
  dispatcher = await startDispatcher({ port: 0, host: '127.0.0.1', modelRepository: models, logger: silent });
  worker = await startWorker({
    dispatcherUrl: dispatcher.url,
    workerId: 'bench-cli-1',
    maxLabels: 2,
    modelRepository: models,
    logger: silent,
  });
  for (;;) {
    const workers = (await (await fetch(`${dispatcher.url}/workers`)).json()) as unknown[];
    if (workers.length === 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await dispatcher?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('benchmark CLI', () => {
  it('lets flags given win over the preset, says which, and reports progress on stderr', async () => {
    const run = await bench([
      '--dispatcher-url',
      dispatcher.url,
      '--preset',
      'over-capacity',
      '--requests',
      '6',
      '--wait-avg',
      '0.01',
      '--wait-stddev',
      '0',
      '--policy',
      'affinity',
    ]);
    expect(run.stderr).not.toContain('Error');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'preset over-capacity; from the command line (flags win over a preset): --requests 6 (preset 2400), ' +
        '--wait-avg 0.01 (preset scaled), --wait-stddev 0 (preset scaled)',
    );
    // The preset's 2400 would take minutes; the flag's 6 is what ran, on the preset's 5 labels.
    expect(run.stdout).toContain('Total Requests: 6');
    expect(run.stdout).toContain('Tasks Completed: 6');
    expect(run.stdout).toContain('Miss bound, uniform closed-loop bound (expected): ');
    expect(run.stdout).not.toMatch(/floor/i);
    const progress = run.stderr.split('\n').filter((l) => l.startsWith('benchmark '));
    expect(progress[0]).toMatch(/^benchmark \d+\.\d s \| affinity: sending requests 0\/6 \| phase 0\.0 s$/);
    expect(progress.some((l) => l.includes('affinity: simulating the same traffic'))).toBe(true);
  });

  it('prints no progress lines with --quiet', async () => {
    const run = await bench([
      '--dispatcher-url',
      dispatcher.url,
      '--requests',
      '2',
      '--labels',
      '2',
      '--wait-avg',
      '0',
      '--wait-stddev',
      '0',
      '--quiet',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Total Requests: 2');
    expect(run.stderr).not.toMatch(/^benchmark /m);
  });

  it('refuses a preset whose waits need a calibration it cannot run, saying what to give', async () => {
    const run = await bench(['--dispatcher-url', dispatcher.url, '--preset', 'at-capacity']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '--preset at-capacity scales its waits by a measured load time: give --wait-avg and --wait-stddev, or let the benchmark start the stack',
    );
  });

  it('refuses --quick with --preset', async () => {
    const run = await bench(['--quick', '--preset', 'over-capacity']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--quick is a preset of its own: it excludes --preset and --scenario');
  });
});
