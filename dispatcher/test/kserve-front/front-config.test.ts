/** The v2 front's options: body limit against the worker link's frame, and the gRPC port. */
import { describe, expect, it } from 'vitest';
import { ConfigError, INFER_FRAME_OVERHEAD_BYTES, loadConfig, resolveOptions } from '../../src/config.js';

describe('resolveOptions (v2 front)', () => {
  it('defaults MAX_INFER_BODY_BYTES to the frame less its overhead, enough for 8 224x224x3 FP32 images', () => {
    const o = resolveOptions();
    expect(o.maxInferBodyBytes).toBe(64 * 1024 * 1024 - INFER_FRAME_OVERHEAD_BYTES);
    expect(o.maxInferBodyBytes).toBeGreaterThan(8 * 224 * 224 * 3 * 4);
    expect(o.maxBodyBytes).toBe(1024 * 1024);
  });

  it('refuses a v2 body limit that would not fit a worker frame, naming the option', () => {
    expect(() => resolveOptions({ maxInferBodyBytes: 64 * 1024 * 1024 })).toThrow(ConfigError);
    expect(() => resolveOptions({ maxInferBodyBytes: 64 * 1024 * 1024 })).toThrow(/maxInferBodyBytes/);
    expect(resolveOptions({ maxPayloadBytes: 2 << 20, maxInferBodyBytes: 1 << 20 }).maxInferBodyBytes).toBe(
      1 << 20,
    );
  });

  it('gRPC on 8081, ephemeral when the HTTP port is, off with false', () => {
    expect(resolveOptions().grpcPort).toBe(8081);
    expect(resolveOptions({ port: 0 }).grpcPort).toBe(0);
    expect(resolveOptions({ port: 0, grpcPort: 9001 }).grpcPort).toBe(9001);
    expect(resolveOptions({ grpcPort: false }).grpcPort).toBe(false);
  });
});

describe('loadConfig (v2 front)', () => {
  it('reads MAX_BODY_BYTES, MAX_INFER_BODY_BYTES and GRPC_PORT (off)', () => {
    const c = loadConfig({ MAX_BODY_BYTES: '2048', MAX_INFER_BODY_BYTES: '4096', GRPC_PORT: 'off' });
    expect(c.maxBodyBytes).toBe(2048);
    expect(c.maxInferBodyBytes).toBe(4096);
    expect(c.grpcPort).toBe(false);
    expect(loadConfig({ GRPC_PORT: '9100' }).grpcPort).toBe(9100);
    expect(() => loadConfig({ GRPC_PORT: 'nine' })).toThrow(/GRPC_PORT/);
  });
});
