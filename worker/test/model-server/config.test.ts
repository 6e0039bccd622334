import { describe, expect, it } from 'vitest';
import { ModelServerConfigError, loadModelServerConfig } from '../../src/model-server/config.js';

describe('loadModelServerConfig', () => {
  it('defaults: port 8000, 64 MiB bounds, no gRPC front', () => {
    expect(loadModelServerConfig({})).toEqual({
      port: 8000,
      host: '127.0.0.1',
      repository: './models',
      logLevel: 'info',
      maxBodyBytes: 64 * 1024 * 1024,
      maxResponseBytes: 64 * 1024 * 1024,
    });
  });
  it('reads the bounds and GRPC_PORT; an empty value is unset; a bad one names the variable', () => {
    const c = loadModelServerConfig({
      MAX_BODY_BYTES: '1024',
      MAX_RESPONSE_BYTES: '2048',
      GRPC_PORT: '0',
      PORT: '',
    });
    expect(c).toMatchObject({ maxBodyBytes: 1024, maxResponseBytes: 2048, grpcPort: 0, port: 8000 });
    expect(() => loadModelServerConfig({ MAX_RESPONSE_BYTES: '0' })).toThrow(ModelServerConfigError);
    expect(() => loadModelServerConfig({ GRPC_PORT: 'x' })).toThrow(/^invalid GRPC_PORT: /);
  });
});
