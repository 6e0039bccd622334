import { describe, expect, it } from 'vitest';
import { KServeProtocolError, halfToNumber, tensorFromJson, tensorToJsonData } from '../src/index.js';

describe('tensorFromJson', () => {
  it('builds the typed array of each datatype from flat or nested data', () => {
    expect(tensorFromJson('x', 'INT64', [2], [1, -2]).data).toEqual(BigInt64Array.from([1n, -2n]));
    expect(tensorFromJson('x', 'INT32', [1, 2], [[7, 8]]).data).toEqual(Int32Array.from([7, 8]));
    expect(tensorFromJson('x', 'FP32', [2], [0.5, 1]).data).toEqual(Float32Array.from([0.5, 1]));
    expect(tensorFromJson('x', 'FP64', [1], [0.1]).data).toEqual(Float64Array.from([0.1]));
    expect(tensorFromJson('x', 'BOOL', [2], [true, false]).data).toEqual(Uint8Array.from([1, 0]));
    expect(tensorFromJson('x', 'UINT8', [1], [255]).data).toEqual(Uint8Array.from([255]));
    expect(tensorFromJson('x', 'UINT64', [1], [5]).data).toEqual(BigUint64Array.from([5n]));
    const bytes = tensorFromJson('x', 'BYTES', [2], ['é', '']).data as Buffer[];
    expect(bytes.map((b) => b.toString('hex'))).toEqual(['c3a9', '']);
  });

  it.each<[string, unknown[], RegExp]>([
    ['INT32', [2 ** 31], /element 0 \(2147483648\) is not an integer in \[-2147483648, 2147483647\]/],
    ['INT64', [2 ** 60], /is not an integer/],
    ['UINT8', [-1], /is not an integer in \[0, 255\]/],
    ['FP32', ['1'], /element 0 \("1"\) is not a number/],
    ['BOOL', [1], /is not a boolean/],
    ['BYTES', [1], /is not a string/],
    ['FP16', [1], /receiving FP16 data via JSON is not supported/],
    ['COMPLEX', [1], /unknown datatype 'COMPLEX'/],
  ])('rejects bad %s data', (datatype, data, message) => {
    expect(() => tensorFromJson('x', datatype, [1], data)).toThrow(KServeProtocolError);
    expect(() => tensorFromJson('x', datatype, [1], data)).toThrow(message);
  });

  it("names the model in Triton's element-count message", () => {
    expect(() => tensorFromJson('ids', 'INT64', [1, 3], [1, 2], { model: 'm' })).toThrow(
      "unexpected number of elements for input 'ids' of model 'm': shape [1,3] needs 3, 'data' has 2",
    );
    expect(() => tensorFromJson('ids', 'INT64', [-1], [])).toThrow(
      /'shape' must be an array of non-negative integers/,
    );
  });
});

describe('tensorToJsonData', () => {
  it('writes numbers, booleans and UTF-8 strings', () => {
    expect(
      tensorToJsonData({ name: 'y', datatype: 'FP32', shape: [2], data: Float32Array.from([0.5, 2]) }),
    ).toEqual([0.5, 2]);
    expect(
      tensorToJsonData({ name: 'y', datatype: 'INT64', shape: [1], data: BigInt64Array.from([5n]) }),
    ).toEqual([5]);
    expect(
      tensorToJsonData({ name: 'y', datatype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) }),
    ).toEqual([true, false]);
    expect(
      tensorToJsonData({ name: 'y', datatype: 'FP16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) }),
    ).toEqual([1, -2]);
    expect(
      tensorToJsonData({ name: 'y', datatype: 'BF16', shape: [1], data: Uint16Array.from([0x3fc0]) }),
    ).toEqual([1.5]);
    expect(tensorToJsonData({ name: 'y', datatype: 'BYTES', shape: [1], data: [Buffer.from('hé')] })).toEqual(
      ['hé'],
    );
    expect(halfToNumber(0x7c00)).toBe(Infinity);
  });
});
