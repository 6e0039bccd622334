/**
 * The crash test shared by the durable stores: a child process writes through a store and is
 * SIGKILLed mid-stream; every write it acknowledged must be there when the store is opened again.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { TaskStore } from '../../src/task-store/task-store.js';

const WRITER = fileURLToPath(new URL('./fixtures/store-writer.js', import.meta.url));

/** What a killed writer had acknowledged before it died. */
export interface Acknowledged {
  readonly created: string[];
  readonly finished: string[];
}

/**
 * Runs the writer on `spec` (built package: the root `npm test` builds first) until it has
 * acknowledged `atLeast` creates, then SIGKILLs it and resolves what it acknowledged.
 */
export async function killWriterMidStream(
  spec: string,
  atLeast: number,
  keyPrefix?: string,
): Promise<Acknowledged> {
  const child = spawn(process.execPath, [WRITER, spec, ...(keyPrefix ? [keyPrefix] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const acked: Acknowledged = { created: [], finished: [] };
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const [word, op, id] = line.split(' ');
    if (word !== 'ack' || !id) continue;
    (op === 'create' ? acked.created : acked.finished).push(id);
    if (acked.created.length >= atLeast) break;
  }
  if (acked.created.length < atLeast) {
    throw new Error(`writer stopped after ${acked.created.length} creates: ${stderr}`);
  }
  child.kill('SIGKILL');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
  return acked;
}

/** Checks that `store` holds every acknowledged write, and the finished ones ended once. */
export async function expectAcknowledged(store: TaskStore, acked: Acknowledged): Promise<void> {
  const missing: string[] = [];
  for (const id of acked.created) if (!(await store.get(id))) missing.push(id);
  expect(missing).toEqual([]);
  for (const id of acked.finished) {
    const i = Number(id.slice(1));
    expect(await store.get(id)).toMatchObject({ status: 'completed', attempts: 1, resultJson: `{"i":${i}}` });
  }
  // Every unfinished task the writer left is still there to be re-queued, oldest first.
  const unfinished = (await store.unfinished()).map((t) => t.taskId);
  const finished = new Set(acked.finished);
  const expected = acked.created.filter((id) => !finished.has(id) && Number(id.slice(1)) % 2 === 1);
  expect(unfinished).toEqual(expect.arrayContaining(expected));
}
