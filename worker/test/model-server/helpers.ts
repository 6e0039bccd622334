import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { OnnxDataType, encodeOnnxModel, generateDemoModels, modelPaths } from '@smart-routing/model-repo';
import { pino, type Logger } from 'pino';

/** Hidden size of the test models. */
export const HIDDEN = 8;

/** A temp repository with `count` tiny demo models (label-1..label-count). */
export async function makeRepository(count = 2, seed = 1): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sr-model-server-'));
  await generateDemoModels({ dir, count, sizeMb: 0.25, hiddenSize: HIDDEN, seed });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Adds `strings` to the repository at `dir`: a BYTES model (Identity from `text` to `echo`, any length). */
export async function addStringsModel(dir: string): Promise<void> {
  const strings = modelPaths(dir, 'strings');
  await mkdir(join(strings.dir, '1'), { recursive: true });
  const str = (name: string) => ({ name, elemType: OnnxDataType.STRING, dims: ['n'] });
  await writeFile(
    strings.modelPath,
    encodeOnnxModel({
      name: 'strings',
      node: [{ opType: 'Identity', input: ['text'], output: ['echo'] }],
      initializer: [],
      input: [str('text')],
      output: [str('echo')],
    }),
  );
  await writeFile(strings.configPath, 'name: "strings"\nmax_batch_size: 0\n');
}

/** A pino logger that keeps its records in memory. */
export function memoryLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records };
}

/** A request to the server: status and parsed JSON body (undefined when empty). */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** An embedding infer request for token ids, one row per inner array. */
export function embedRequest(rows: number[][], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const shape = [rows.length, rows[0]!.length];
  return {
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape, data: rows },
      { name: 'attention_mask', datatype: 'INT64', shape, data: rows.flat().map(() => 1) },
    ],
    ...extra,
  };
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `fn` until it returns true or `ms` pass. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
