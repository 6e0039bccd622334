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

describe('tenants and routing tuning', () => {
  it('reads named keys, tenant weights and the routing knobs, with documented defaults', () => {
    const d = loadConfig({});
    expect(d.namedApiKeys).toEqual({});
    expect(d.tenantWeights).toEqual({});
    expect(d.routing).toEqual({
      demandHalfLifeMs: 30_000,
      residencyLoadMultiple: 4,
      rentLoadMultiple: 1,
      replicaUtilisation: 0.6,
      maxReplicaShare: 0.5,
      prewarm: true,
      releaseSurplus: true,
      defaultLoadMs: 1000,
    });
    const c = loadConfig({
      API_KEYS: 'plain',
      NAMED_API_KEYS: 'alice:k1, bob:k:2',
      TENANT_WEIGHTS: 'alice:3,bob:0.5',
      DEMAND_HALF_LIFE_MS: '5000',
      RENT_LOAD_MULTIPLE: '0',
      REPLICA_UTILISATION: '0.8',
      PREWARM: 'false',
      RELEASE_SURPLUS: 'no',
    });
    // Named keys are accepted keys too; a key may contain a colon (split at the first).
    expect(c.apiKeys).toEqual(['plain', 'k1', 'k:2']);
    expect(c.namedApiKeys).toEqual({ alice: 'k1', bob: 'k:2' });
    expect(c.tenantWeights).toEqual({ alice: 3, bob: 0.5 });
    expect(c.routing).toMatchObject({
      demandHalfLifeMs: 5000,
      rentLoadMultiple: 0,
      replicaUtilisation: 0.8,
      maxReplicaShare: 0.5,
      prewarm: false,
      releaseSurplus: false,
    });
    expect(Object.isFrozen(c.routing)).toBe(true);
  });

  it('names the variable in its errors', () => {
    expect(() => loadConfig({ TENANT_WEIGHTS: 'alice:0' })).toThrow(/invalid TENANT_WEIGHTS/);
    expect(() => loadConfig({ TENANT_WEIGHTS: 'alice:x' })).toThrow(/invalid TENANT_WEIGHTS/);
    expect(() => loadConfig({ TENANT_WEIGHTS: 'alice' })).toThrow(
      /invalid TENANT_WEIGHTS: must be name1:weight1,name2:weight2/,
    );
    expect(() => loadConfig({ NAMED_API_KEYS: ':k' })).toThrow(/invalid NAMED_API_KEYS/);
    expect(() => loadConfig({ REPLICA_UTILISATION: '1.5' })).toThrow(/invalid REPLICA_UTILISATION/);
    expect(() => loadConfig({ MAX_REPLICA_SHARE: '0' })).toThrow(/invalid MAX_REPLICA_SHARE/);
    expect(() => loadConfig({ DEMAND_HALF_LIFE_MS: '0' })).toThrow(/invalid DEMAND_HALF_LIFE_MS/);
    expect(() => resolveOptions({ routing: { replicaUtilisation: 2 } })).toThrow(/invalid routing: .*<=1/);
  });
});

describe('resolveOptions', () => {
  it('names the option in its errors and freezes the result', () => {
    expect(() => resolveOptions({ port: 70000 })).toThrow(/invalid port/);
    expect(() => resolveOptions({ apiKeys: [''] })).toThrow(/invalid apiKeys/);
    expect(Object.isFrozen(resolveOptions({}).apiKeys)).toBe(true);
  });
});

describe('loadConfig: replication (REDIS_URL, LEASE_TTL_MS, REPLICA_ID)', () => {
  it('is off without REDIS_URL', () => {
    expect(loadConfig({}).replication).toBeUndefined();
  });

  it('turns on with REDIS_URL, the task store becoming the Redis store on it', () => {
    const c = loadConfig({ REDIS_URL: 'redis://r:6379/2', REPLICA_ID: 'east-1', LEASE_TTL_MS: '900' });
    expect(c.replication).toEqual({
      redisUrl: 'redis://r:6379/2',
      leaseTtlMs: 900,
      replicaId: 'east-1',
      keyPrefix: 'smart-routing:',
    });
    expect(c.taskStore).toEqual({ kind: 'redis', url: 'redis://r:6379/2' });
  });

  it('defaults: a 2000 ms lease, <hostname>-<pid>, the store key prefix', () => {
    const c = loadConfig({ REDIS_URL: 'redis://r:6379', TASK_STORE_KEY_PREFIX: '{sr}:' });
    expect(c.replication?.leaseTtlMs).toBe(2000);
    expect(c.replication?.replicaId).toMatch(new RegExp(`-${process.pid}$`));
    expect(c.replication?.keyPrefix).toBe('{sr}:');
  });

  it('accepts TASK_STORE equal to REDIS_URL and refuses another store, naming both', () => {
    expect(loadConfig({ REDIS_URL: 'redis://r:1', TASK_STORE: 'redis://r:1' }).taskStore.kind).toBe('redis');
    expect(() => loadConfig({ REDIS_URL: 'redis://r:1', TASK_STORE: 'memory' })).toThrow(
      /TASK_STORE.*REDIS_URL=redis:\/\/r:1/,
    );
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://r:1' })).toThrow(/REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: 'redis://r:1', LEASE_TTL_MS: '100' })).toThrow(/LEASE_TTL_MS/);
    expect(() => loadConfig({ REDIS_URL: 'redis://r:1', REPLICA_ID: 'a:b' })).toThrow(/REPLICA_ID/);
  });
});
