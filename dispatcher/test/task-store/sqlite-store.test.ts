import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteTaskStore } from '../../src/task-store/sqlite-store.js';
import { describeTaskStoreContract, newTask } from './contract.js';
import { expectAcknowledged, killWriterMidStream } from './durability.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sqlite-store-'));
}

describeTaskStoreContract('sqlite', async () => {
  const dir = await tempDir();
  return {
    store: new SqliteTaskStore({ path: join(dir, 'tasks.sqlite') }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('SqliteTaskStore', () => {
  it('opens in WAL mode with synchronous=NORMAL, creates the folder and records the schema version', async () => {
    const dir = await tempDir();
    const path = join(dir, 'nested', 'tasks.sqlite');
    const store = new SqliteTaskStore({ path });
    await store.create(newTask('t', 1));
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT version FROM schema_version').all()).toEqual([{ version: 1 }]);
    const indexes = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]
    ).map((r) => r.name);
    expect(indexes).toEqual(
      expect.arrayContaining([
        'tasks_by_time',
        'tasks_by_status_time',
        'tasks_unfinished',
        'tasks_by_finish',
      ]),
    );
    db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('synchronous=NORMAL holds on each connection', async () => {
    const dir = await tempDir();
    const store = new SqliteTaskStore({ path: join(dir, 't.sqlite') });
    // The pragma is per connection: read it from the store's own.
    const db = (store as unknown as { db: Database.Database }).db;
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listing, re-queueing and pruning use the indexes, not a table scan or a sort', async () => {
    const dir = await tempDir();
    const store = new SqliteTaskStore({ path: join(dir, 't.sqlite') });
    const { db, stmt } = store as unknown as {
      db: Database.Database;
      stmt: Record<string, Database.Statement>;
    };
    const plan = (name: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${stmt[name]!.source}`).all(planParams) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
    const planParams = { limit: 5, status: 'queued', q: 1, id: 'a' };
    expect(plan('unfinished')).toMatch(/USING INDEX tasks_unfinished/);
    expect(plan('unfinished')).not.toMatch(/TEMP B-TREE/);
    expect(plan('listStatusAfter')).toMatch(/USING INDEX tasks_by_status_time/);
    expect(plan('listStatus')).toMatch(/USING INDEX tasks_by_status_time/);
    expect(plan('list')).toMatch(/USING INDEX tasks_by_time/);
    expect(plan('listAfter')).toMatch(/USING INDEX tasks_by_time/);
    const positional = (name: string, ...args: unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${stmt[name]!.source}`).all(...args) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
    expect(positional('pruneOld', 1, 10)).toMatch(/USING (COVERING )?INDEX tasks_by_finish/);
    expect(positional('pruneOldest', 10)).toMatch(/USING (COVERING )?INDEX tasks_by_finish/);
    expect(positional('pruneOldest', 10)).not.toMatch(/TEMP B-TREE/);
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a reopened file has every record', async () => {
    const dir = await tempDir();
    const path = join(dir, 't.sqlite');
    const first = new SqliteTaskStore({ path });
    await first.create(newTask('a', 1));
    await first.create(newTask('b', 2));
    await first.finish('a', { status: 'completed', finishedAt: 3, resultJson: '"ok"' });
    await first.close();
    const second = new SqliteTaskStore({ path });
    expect(await second.get('a')).toMatchObject({ status: 'completed', resultJson: '"ok"' });
    expect((await second.unfinished()).map((t) => t.taskId)).toEqual(['b']);
    await second.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a file written by a newer schema', async () => {
    const dir = await tempDir();
    const path = join(dir, 't.sqlite');
    await new SqliteTaskStore({ path }).close();
    const db = new Database(path);
    db.prepare('UPDATE schema_version SET version = 99').run();
    db.close();
    expect(() => new SqliteTaskStore({ path })).toThrow(/schema version 99/);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('SqliteTaskStore durability', () => {
  it('a SIGKILLed writer loses no acknowledged write: a new process sees every one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'tasks.sqlite');
    const acked = await killWriterMidStream(`sqlite:${path}`, 300);
    expect(acked.finished.length).toBeGreaterThan(100);
    const store = new SqliteTaskStore({ path });
    await expectAcknowledged(store, acked);
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
});
