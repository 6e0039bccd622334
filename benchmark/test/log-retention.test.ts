import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneRunLogs } from '../src/log-retention.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Run folders with a log each, modified `i` minutes after a fixed time (so order is by mtime, not name). */
async function runs(names: string[]): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'log-retention-'));
  for (const [i, name] of names.entries()) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'collector.log'), '{}\n');
    const t = new Date(Date.UTC(2026, 0, 1, 0, i));
    await utimes(join(dir, name), t, t);
  }
  return dir;
}

describe('pruneRunLogs', () => {
  it('keeps the newest runs and removes the rest, oldest first', async () => {
    const logs = await runs(['c-oldest', 'a-middle', 'b-newest']);
    await writeFile(join(logs, 'notes.txt'), 'kept');
    expect(await pruneRunLogs(logs, 1)).toEqual([join(logs, 'c-oldest'), join(logs, 'a-middle')]);
    expect((await readdir(logs)).sort()).toEqual(['b-newest', 'notes.txt']);
  });

  it('keeps everything with keep 0 or when there are fewer runs', async () => {
    const logs = await runs(['r1', 'r2']);
    expect(await pruneRunLogs(logs, 0)).toEqual([]);
    expect(await pruneRunLogs(logs, 5)).toEqual([]);
    expect((await readdir(logs)).sort()).toEqual(['r1', 'r2']);
  });

  it('accepts a missing folder and refuses a bad count', async () => {
    expect(await pruneRunLogs(join(tmpdir(), 'no-such-logs-here-xyz'), 3)).toEqual([]);
    await expect(pruneRunLogs('.', -1)).rejects.toThrow('keep must be an integer >= 0, got -1');
  });
});
