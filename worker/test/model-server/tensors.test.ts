import { describe, expect, it } from 'vitest';
import { ModelServerError } from '../../src/model-server/errors.js';
import {
  graphSignature,
  kserveToOrtType,
  ortToKserveType,
  tensorFromOrt,
  tensorToOrt,
} from '../../src/model-server/tensors.js';

describe('tensorToOrt', () => {
  it('passes typed arrays through unchanged and turns BYTES into strings', () => {
    const data = BigInt64Array.from([1n, -2n]);
    const t = tensorToOrt({ name: 'x', datatype: 'INT64', shape: [1, 2], data });
    expect(t).toEqual({ type: 'int64', dims: [1, 2], data });
    expect(t.data).toBe(data);
    expect(tensorToOrt({ name: 'x', datatype: 'BOOL', shape: [1], data: Uint8Array.from([1]) }).type).toBe(
      'bool',
    );
    expect(
      tensorToOrt({ name: 'x', datatype: 'FP16', shape: [1], data: Uint16Array.from([0x3c00]) }).type,
    ).toBe('float16');
    expect(
      tensorToOrt({ name: 's', datatype: 'BYTES', shape: [2], data: [Buffer.from('é'), Buffer.alloc(0)] }),
    ).toEqual({
      type: 'string',
      dims: [2],
      data: ['é', ''],
    });
  });
  it('refuses a datatype ONNX Runtime has no tensor type for', () => {
    const bf16 = { name: 'x', datatype: 'BF16' as const, shape: [1], data: new Uint16Array(1) };
    expect(() => tensorToOrt(bf16)).toThrow(ModelServerError);
    expect(() => tensorToOrt(bf16)).toThrow("input 'x': datatype 'BF16' is not supported");
  });
});

describe('tensorFromOrt', () => {
  it('keeps the result array and names the KServe datatype', () => {
    const data = Float32Array.from([0.5, 2]);
    const t = tensorFromOrt('y', { type: 'float32', dims: [2], data });
    expect(t).toEqual({ name: 'y', datatype: 'FP32', shape: [2], data });
    expect(t.data).toBe(data);
    const s = tensorFromOrt('y', { type: 'string', dims: [1], data: ['hé'] });
    expect(s.datatype).toBe('BYTES');
    expect((s.data as Buffer[])[0]!.toString('hex')).toBe('68c3a9');
    expect(() => tensorFromOrt('y', { type: 'complex64', dims: [1], data: new Float32Array(2) })).toThrow(
      "output tensor type 'complex64' has no KServe datatype",
    );
  });
});

describe('graphSignature', () => {
  it("names ORT's types in Triton's terms and keeps symbolic dims", () => {
    expect(
      graphSignature({
        inputs: [{ name: 'ids', type: 'int64', shape: ['batch', 'seq'] }],
        outputs: [{ name: 'z', type: 'complex64', shape: [2] }],
      }),
    ).toEqual({
      inputs: [{ name: 'ids', dataType: 'TYPE_INT64', typeLabel: 'int64', dims: ['batch', 'seq'] }],
      outputs: [{ name: 'z', dataType: undefined, typeLabel: 'complex64', dims: [2] }],
    });
  });
});

describe('datatype maps', () => {
  it('maps KServe and ORT names both ways', () => {
    expect(kserveToOrtType('INT64')).toBe('int64');
    expect(kserveToOrtType('BYTES')).toBe('string');
    expect(kserveToOrtType('FP16')).toBe('float16');
    expect(kserveToOrtType('BF16')).toBeUndefined();
    expect(ortToKserveType('float32')).toBe('FP32');
    expect(ortToKserveType('float16')).toBe('FP16');
  });
});
