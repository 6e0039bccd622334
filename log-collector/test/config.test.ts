import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('has the contract defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8001,
      host: '0.0.0.0',
      dir: './logs',
      runId: undefined,
      logLevel: 'info',
    });
  });

  it('reads the env, treats empty values as unset, and lets flags override', () => {
    const env = { PORT: '9001', HOST: '', LOG_DIR: '/tmp/x', RUN_ID: 'r-1', LOG_LEVEL: 'debug' };
    expect(loadConfig(env)).toMatchObject({ port: 9001, host: '0.0.0.0', dir: '/tmp/x', runId: 'r-1' });
    expect(loadConfig(env, { port: '0', runId: 'r-2', logLevel: 'warn' })).toMatchObject({
      port: 0,
      runId: 'r-2',
      logLevel: 'warn',
    });
  });

  it('names the bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ RUN_ID: 'a/b' })).toThrow(/RUN_ID/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
});
