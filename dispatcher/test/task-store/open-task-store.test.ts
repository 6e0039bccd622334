import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { MemoryTaskStore } from '../../src/task-store/memory-store.js';
import {
  DEFAULT_TASK_STORE,
  openTaskStore,
  parseTaskStoreSpec,
} from '../../src/task-store/open-task-store.js';
import { RedisTaskStore } from '../../src/task-store/redis-store.js';
import { SqliteTaskStore } from '../../src/task-store/sqlite-store.js';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { newTask } from './contract.js';

describe('parseTaskStoreSpec', () => {
  it('reads memory, sqlite:<path>, a plain path and redis URLs', () => {
    expect(parseTaskStoreSpec('memory')).toEqual({ kind: 'memory' });
    expect(parseTaskStoreSpec('sqlite:/var/lib/sr/tasks.db')).toEqual({
      kind: 'sqlite',
      path: '/var/lib/sr/tasks.db',
    });
    expect(parseTaskStoreSpec('./tasks.sqlite')).toEqual({ kind: 'sqlite', path: './tasks.sqlite' });
    expect(parseTaskStoreSpec('redis://:pw@10.0.0.5:6379/2')).toEqual({
      kind: 'redis',
      url: 'redis://:pw@10.0.0.5:6379/2',
    });
    expect(parseTaskStoreSpec('rediss://cache.example:6380')).toEqual({
      kind: 'redis',
      url: 'rediss://cache.example:6380',
    });
  });

  it('defaults to ./data/tasks.sqlite when unset or empty', () => {
    expect(DEFAULT_TASK_STORE).toBe('./data/tasks.sqlite');
    expect(parseTaskStoreSpec(undefined)).toEqual({ kind: 'sqlite', path: './data/tasks.sqlite' });
    expect(parseTaskStoreSpec('  ')).toEqual({ kind: 'sqlite', path: './data/tasks.sqlite' });
  });

  it('refuses other schemes and an empty sqlite path, naming TASK_STORE', () => {
    for (const bad of ['postgres://db/tasks', 'sqlite:', 'redis://[bad']) {
      expect(() => parseTaskStoreSpec(bad), bad).toThrow(ConfigError);
      expect(() => parseTaskStoreSpec(bad), bad).toThrow(/TASK_STORE/);
    }
  });
});

describe('openTaskStore', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'open-store-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens a memory store', async () => {
    const store = await openTaskStore('memory');
    expect(store).toBeInstanceOf(MemoryTaskStore);
    await store.close();
  });

  it('opens a SQLite file from sqlite:<path> and from a plain path', async () => {
    for (const spec of [`sqlite:${join(dir, 'a.sqlite')}`, join(dir, 'sub', 'b.sqlite')]) {
      const store = await openTaskStore(spec);
      expect(store).toBeInstanceOf(SqliteTaskStore);
      expect(store.kind).toBe('sqlite');
      await store.create(newTask('t', 1));
      await store.close();
    }
    expect((await stat(join(dir, 'sub', 'b.sqlite'))).isFile()).toBe(true);
  });

  it('accepts a parsed spec', async () => {
    const store = await openTaskStore({ kind: 'sqlite', path: join(dir, 'c.sqlite') });
    expect(store.kind).toBe('sqlite');
    await store.close();
  });

  describe.skipIf(redisMissing !== undefined)('redis', () => {
    let server: RedisServerHandle;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('connects to redis://… with the key prefix given', async () => {
      const logger = pino({ level: 'silent' });
      const store = await openTaskStore(server.url, { keyPrefix: 'open:', logger });
      expect(store).toBeInstanceOf(RedisTaskStore);
      expect((store as RedisTaskStore).keyPrefix).toBe('open:');
      await store.create(newTask('t', 1));
      expect((await store.get('t'))?.status).toBe('queued');
      await store.close();
    });
  });
});
