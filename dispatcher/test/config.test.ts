import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveOptions } from '../src/config.js';

describe('loadConfig: task store', () => {
  it('defaults to the SQLite file, a day of results and at most 100000 of them', () => {
    expect(loadConfig({})).toMatchObject({
      taskStore: { kind: 'sqlite', path: './data/tasks.sqlite' },
      taskStoreKeyPrefix: 'smart-routing:',
      resultTtlMs: 86_400_000,
      maxStoredResults: 100_000,
    });
  });

  it('reads TASK_STORE, TASK_STORE_KEY_PREFIX, RESULT_TTL_S and RESULT_MAX_COUNT', () => {
    expect(
      loadConfig({
        TASK_STORE: 'redis://127.0.0.1:6379/1',
        TASK_STORE_KEY_PREFIX: '{sr}:',
        RESULT_TTL_S: '60',
        RESULT_MAX_COUNT: '10',
      }),
    ).toMatchObject({
      taskStore: { kind: 'redis', url: 'redis://127.0.0.1:6379/1' },
      taskStoreKeyPrefix: '{sr}:',
      resultTtlMs: 60_000,
      maxStoredResults: 10,
    });
    expect(loadConfig({ TASK_STORE: 'memory' }).taskStore).toEqual({ kind: 'memory' });
  });

  it('names the variable when one is wrong', () => {
    expect(() => loadConfig({ TASK_STORE: 'mysql://db' })).toThrow(/TASK_STORE/);
    expect(() => loadConfig({ RESULT_TTL_S: '0' })).toThrow(/RESULT_TTL_S/);
    expect(() => loadConfig({ RESULT_MAX_COUNT: '-1' })).toThrow(/RESULT_MAX_COUNT/);
  });
});

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      policy: 'affinity',
      taskTimeoutMs: 60_000,
      maxQueue: 1000,
      maxQueuePerLabel: 500,
      maxAttempts: 3,
      heartbeatIntervalMs: 1000,
      workerTimeoutMs: 5000,
      shutdownGraceMs: 10_000,
      workerToken: undefined,
      apiKeys: [],
      uploaderUrl: undefined,
      modelRepository: undefined,
      logCollectorUrl: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every variable, with flags on top and empty strings as unset', () => {
    const c = loadConfig(
      {
        PORT: '9000',
        HOST: '',
        ROUTING_POLICY: 'idle-first',
        TASK_TIMEOUT_MS: '1500',
        API_KEYS: ' a, b ,,c ',
        WORKER_TOKEN: 't',
        UPLOADER_URL: 'http://127.0.0.1:8002/',
        MODEL_REPOSITORY: './models',
      },
      { PORT: '0' },
    );
    expect(c).toMatchObject({
      port: 0,
      host: '0.0.0.0',
      policy: 'idle-first',
      taskTimeoutMs: 1500,
      apiKeys: ['a', 'b', 'c'],
      workerToken: 't',
      uploaderUrl: 'http://127.0.0.1:8002',
      modelRepository: './models',
    });
  });

  it('RANDOM_DISPATCH=true selects random whatever ROUTING_POLICY says', () => {
    expect(loadConfig({ RANDOM_DISPATCH: 'true', ROUTING_POLICY: 'affinity' }).policy).toBe('random');
    expect(loadConfig({ RANDOM_DISPATCH: 'false' }).policy).toBe('affinity');
  });

  it('names the variable in its errors', () => {
    expect(() => loadConfig({ MAX_ATTEMPTS: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ MAX_ATTEMPTS: '0' })).toThrow(/invalid MAX_ATTEMPTS/);
    expect(() => loadConfig({ ROUTING_POLICY: 'smart' })).toThrow(/invalid ROUTING_POLICY/);
    expect(() => loadConfig({ RANDOM_DISPATCH: 'maybe' })).toThrow(
      /invalid RANDOM_DISPATCH: must be true or false/,
    );
    expect(() => loadConfig({ UPLOADER_URL: 'ftp://x' })).toThrow(/invalid UPLOADER_URL/);
  });
});

describe('resolveOptions', () => {
  it('names the option in its errors and freezes the result', () => {
    expect(() => resolveOptions({ port: 70000 })).toThrow(/invalid port/);
    expect(() => resolveOptions({ apiKeys: [''] })).toThrow(/invalid apiKeys/);
    expect(Object.isFrozen(resolveOptions({}).apiKeys)).toBe(true);
  });
});
