import { describe, expect, it } from 'vitest';
import { ModelServerError } from '../../src/model-server/errors.js';
import {
  elementCount,
  flattenData,
  fromThreadTensor,
  kserveToOrtType,
  ortToKserveType,
  toThreadTensor,
} from '../../src/model-server/tensors.js';

describe('flattenData', () => {
  it('flattens nested rows and keeps flat data as is', () => {
    const flat = [1, 2, 3];
    expect(flattenData(flat)).toBe(flat);
    expect(
      flattenData([
        [1, 2],
        [3, [4, 5]],
      ]),
    ).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('elementCount', () => {
  it('multiplies dims and flags bad ones', () => {
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([])).toBe(1);
    expect(elementCount([2, -1])).toBeNaN();
    expect(elementCount([1.5])).toBeNaN();
  });
});

describe('toThreadTensor', () => {
  it('builds the typed array ONNX Runtime expects', () => {
    expect(toThreadTensor('x', 'int64', [2], [1, -2]).data).toEqual(BigInt64Array.from([1n, -2n]));
    expect(toThreadTensor('x', 'int32', [1], [7]).data).toEqual(Int32Array.from([7]));
    expect(toThreadTensor('x', 'float32', [2], [0.5, 1]).data).toEqual(Float32Array.from([0.5, 1]));
    expect(toThreadTensor('x', 'float64', [1], [0.1]).data).toEqual(Float64Array.from([0.1]));
    expect(toThreadTensor('x', 'bool', [2], [true, false]).data).toEqual(Uint8Array.from([1, 0]));
    expect(toThreadTensor('x', 'uint8', [1], [255]).data).toEqual(Uint8Array.from([255]));
    expect(toThreadTensor('x', 'string', [1], ['a']).data).toEqual(['a']);
  });

  it.each<[string, unknown[], RegExp]>([
    ['int32', [2 ** 31], /element 0 \(2147483648\) is not an integer in \[-2147483648, 2147483647\]/],
    ['int64', [2 ** 60], /is not an integer/],
    ['uint8', [-1], /is not an integer in \[0, 255\]/],
    ['float32', ['1'], /element 0 \("1"\) is not a number/],
    ['bool', [1], /is not a boolean/],
    ['string', [1], /is not a string/],
  ])('rejects bad %s elements', (type, data, message) => {
    expect(() => toThreadTensor('x', type, [1], data)).toThrow(ModelServerError);
    expect(() => toThreadTensor('x', type, [1], data)).toThrow(message);
  });
});

describe('fromThreadTensor', () => {
  it('turns ORT results into KServe JSON', () => {
    expect(fromThreadTensor({ type: 'float32', dims: [2], data: Float32Array.from([0.5, 2]) })).toEqual({
      datatype: 'FP32',
      shape: [2],
      data: [0.5, 2],
    });
    expect(fromThreadTensor({ type: 'int64', dims: [1], data: BigInt64Array.from([5n]) }).data).toEqual([5]);
    expect(fromThreadTensor({ type: 'bool', dims: [2], data: Uint8Array.from([1, 0]) }).data).toEqual([
      true,
      false,
    ]);
    expect(
      fromThreadTensor({ type: 'float16', dims: [2], data: Uint16Array.from([0x3c00, 0xc000]) }).data,
    ).toEqual([1, -2]);
    expect(fromThreadTensor({ type: 'string', dims: [1], data: ['a'] })).toEqual({
      datatype: 'BYTES',
      shape: [1],
      data: ['a'],
    });
  });
});

describe('datatype maps', () => {
  it('maps KServe and ORT names both ways', () => {
    expect(kserveToOrtType('INT64')).toBe('int64');
    expect(kserveToOrtType('BYTES')).toBe('string');
    expect(kserveToOrtType('FP16')).toBeUndefined();
    expect(ortToKserveType('float32')).toBe('FP32');
    expect(ortToKserveType('float16')).toBe('FP16');
  });
});
