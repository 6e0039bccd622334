import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8002,
      host: '127.0.0.1',
      repository: './models',
      hfEndpoint: 'https://huggingface.co',
      logLevel: 'info',
      apiKeys: [],
    });
  });

  it('reads the environment, treats empty strings as unset, and lets flags win', () => {
    const config = loadConfig(
      {
        PORT: '9000',
        HOST: '127.0.0.1',
        MODEL_REPOSITORY: '/srv/models',
        HF_ENDPOINT: 'http://127.0.0.1:5000/',
        HF_TOKEN: 'hf_x',
        LOG_COLLECTOR_URL: 'http://127.0.0.1:8001',
        LOG_LEVEL: 'debug',
      },
      { port: '0', repository: '/other' },
    );
    expect(config).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      repository: '/other',
      hfEndpoint: 'http://127.0.0.1:5000',
      hfToken: 'hf_x',
      logCollectorUrl: 'http://127.0.0.1:8001',
      logLevel: 'debug',
    });
    expect(loadConfig({ HF_TOKEN: '' }).hfToken).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the bad variable and never echoes its value', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT/);
    expect(() => loadConfig({ HF_ENDPOINT: 'ftp://x' })).toThrow(/HF_ENDPOINT/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(ConfigError);
    expect(() => loadConfig({ API_KEYS: 'secret-key,,other' })).toThrow(
      /^invalid API_KEYS: keys must not be empty$/,
    );
  });

  it('reads API_KEYS (comma-separated, trimmed) and LOCAL_IMPORT_ROOT', () => {
    const config = loadConfig({ API_KEYS: 'a, b', LOCAL_IMPORT_ROOT: '/srv/imports' });
    expect(config.apiKeys).toEqual(['a', 'b']);
    expect(config.localImportRoot).toBe('/srv/imports');
    expect(loadConfig({}).localImportRoot).toBeUndefined();
  });
});
