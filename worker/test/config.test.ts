import { describe, expect, it } from 'vitest';
import { loadWorkerConfig, WorkerConfigError } from '../src/config.js';

describe('loadWorkerConfig', () => {
  it('has the documented defaults', () => {
    const c = loadWorkerConfig({});
    expect(c).toMatchObject({
      dispatcherUrl: 'ws://127.0.0.1:8080',
      maxLabels: 2,
      slots: 1,
      tritonUrl: undefined,
      tritonProtocol: 'http',
      tritonGrpcUrl: 'localhost:8001',
      modelRepository: './models',
      workerToken: undefined,
      logCollectorUrl: undefined,
      logLevel: 'info',
    });
    expect(c.workerId).toMatch(/^[A-Za-z0-9._-]+-[0-9a-f]{6}$/);
    expect(loadWorkerConfig({}).workerId).not.toBe(c.workerId);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every variable, and flags override the environment', () => {
    const env = {
      DISPATCHER_URL: 'http://d:8080',
      WORKER_ID: 'w-1',
      WORKER_MAX_LABELS: '3',
      WORKER_SLOTS: '4',
      WORKER_MEMORY_BUDGET_BYTES: '2000000000',
      TRITON_URL: 'none',
      TRITON_PROTOCOL: 'grpc',
      TRITON_GRPC_URL: 'grpc://triton:9001',
      MODEL_REPOSITORY: '/models',
      WORKER_MODEL_RECHECK_MS: '250',
      WORKER_TOKEN: 'tok',
      LOG_COLLECTOR_URL: 'http://logs:8001',
      LOG_LEVEL: 'debug',
      WORKER_HANDLERS: './my-handlers.js,other-package',
    };
    expect(loadWorkerConfig(env)).toEqual({
      dispatcherUrl: 'http://d:8080',
      dispatcherUrls: ['http://d:8080'],
      dispatcherResolveMs: 5000,
      pendingResultsMax: 1000,
      pendingResultsBytes: 64 * 1024 * 1024,
      recentResultsMs: 10_000,
      recentResultsMax: 256,
      recentResultsBytes: 4 * 1024 * 1024,
      workerId: 'w-1',
      maxLabels: 3,
      slots: 4,
      memoryBudgetBytes: 2_000_000_000,
      tritonUrl: 'none',
      tritonProtocol: 'grpc',
      tritonGrpcUrl: 'triton:9001',
      modelRepository: '/models',
      modelRecheckMs: 250,
      workerToken: 'tok',
      logCollectorUrl: 'http://logs:8001',
      logLevel: 'debug',
      handlers: './my-handlers.js,other-package',
    });
    const c = loadWorkerConfig(env, { slots: '8', tritonUrl: 'http://triton:8000', workerId: undefined });
    expect(c).toMatchObject({ slots: 8, tritonUrl: 'http://triton:8000', workerId: 'w-1' });
  });

  it('reads several dispatcher URLs (DISPATCHER_URLS replaces DISPATCHER_URL), resolve interval and pending bound', () => {
    const c = loadWorkerConfig({
      DISPATCHER_URL: 'http://ignored:1',
      DISPATCHER_URLS: ' ws://a:8080, http://b:8090 ,',
      DISPATCHER_RESOLVE_MS: '0',
      PENDING_RESULTS_MAX: '5',
    });
    expect(c).toMatchObject({
      dispatcherUrls: ['ws://a:8080', 'http://b:8090'],
      dispatcherResolveMs: 0,
      pendingResultsMax: 5,
    });
    expect(loadWorkerConfig({}, { dispatcherUrls: 'ws://x:1,ws://y:2' }).dispatcherUrls).toEqual([
      'ws://x:1',
      'ws://y:2',
    ]);
    expect(loadWorkerConfig({}).dispatcherUrls).toEqual(['ws://127.0.0.1:8080']);
  });

  it('reads the result bounds: pending (count and bytes) and recent (age, count, bytes), env and flags', () => {
    const c = loadWorkerConfig(
      {
        PENDING_RESULTS_BYTES: '1048576',
        RECENT_RESULTS_MS: '0',
        RECENT_RESULTS_MAX: '16',
        RECENT_RESULTS_BYTES: '65536',
      },
      { recentResultsMax: '32' },
    );
    expect(c).toMatchObject({
      pendingResultsBytes: 1_048_576,
      recentResultsMs: 0,
      recentResultsMax: 32,
      recentResultsBytes: 65_536,
    });
  });

  it('treats empty variables as unset', () => {
    expect(loadWorkerConfig({ TRITON_URL: '', WORKER_SLOTS: ' ' })).toMatchObject({
      tritonUrl: undefined,
      slots: 1,
    });
  });

  it.each([
    [{ WORKER_SLOTS: '0' }, /WORKER_SLOTS must be an integer/],
    [{ WORKER_MODEL_RECHECK_MS: '-1' }, /WORKER_MODEL_RECHECK_MS must be a non-negative integer/],
    [{ TRITON_PROTOCOL: 'websocket' }, /TRITON_PROTOCOL must be "http" or "grpc"/],
    [{ TRITON_GRPC_URL: 'http://triton:8001/' }, /TRITON_GRPC_URL must be host:port/],
    [{ TRITON_GRPC_URL: 'triton' }, /TRITON_GRPC_URL must be host:port/],
    [{ WORKER_MAX_LABELS: '1.5' }, /WORKER_MAX_LABELS must be an integer/],
    [{ DISPATCHER_URL: 'localhost:8080' }, /DISPATCHER_URL must be an http\(s\):\/\/ or ws\(s\):\/\/ URL/],
    [
      { DISPATCHER_URLS: 'ws://a:1,b:2' },
      /DISPATCHER_URLS must be a comma-separated list of http\(s\):\/\/ or ws\(s\):\/\/ URLs, got "b:2"/,
    ],
    [{ DISPATCHER_RESOLVE_MS: '-1' }, /DISPATCHER_RESOLVE_MS must be an integer from 0/],
    [{ PENDING_RESULTS_MAX: 'many' }, /PENDING_RESULTS_MAX must be an integer from 0/],
    [{ PENDING_RESULTS_BYTES: '-1' }, /PENDING_RESULTS_BYTES must be an integer from 0/],
    [{ RECENT_RESULTS_MS: '1.5' }, /RECENT_RESULTS_MS must be an integer from 0/],
    [{ RECENT_RESULTS_MAX: 'x' }, /RECENT_RESULTS_MAX must be an integer from 0/],
    [{ RECENT_RESULTS_BYTES: '-5' }, /RECENT_RESULTS_BYTES must be an integer from 0/],
    [{ TRITON_URL: 'triton:8000' }, /TRITON_URL must be an http\(s\):\/\/ URL or "none"/],
    [{ WORKER_ID: 'a b' }, /WORKER_ID must be/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ])('rejects %o', (env, message) => {
    expect(() => loadWorkerConfig(env)).toThrow(WorkerConfigError);
    expect(() => loadWorkerConfig(env)).toThrow(message);
  });
});
