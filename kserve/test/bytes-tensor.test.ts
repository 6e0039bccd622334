import { describe, expect, it } from 'vitest';
import { KServeProtocolError, decodeBytesElements, encodeBytesElements } from '../src/index.js';

// Triton's binary data extension document: "For BYTES type an element is represented by a 4-byte
// unsigned integer giving the length followed by the actual bytes" (little-endian, no padding).
const layout = Buffer.from([3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 1, 0, 0, 0, 0xff]);

describe('encodeBytesElements', () => {
  it("writes Triton's length-prefixed layout", () => {
    const out = encodeBytesElements([Buffer.from('abc'), Buffer.alloc(0), Buffer.from([0xff])]);
    expect(out.equals(layout)).toBe(true);
    expect(encodeBytesElements([]).length).toBe(0);
    const long = encodeBytesElements([Buffer.alloc(300, 7)]);
    expect([...long.subarray(0, 4)]).toEqual([0x2c, 0x01, 0, 0]);
  });
});

describe('decodeBytesElements', () => {
  it('reads the layout back, element for element', () => {
    expect(decodeBytesElements(layout, 3).map((b) => b.toString('hex'))).toEqual(['616263', '', 'ff']);
    expect(decodeBytesElements(new Uint8Array(0), 0)).toEqual([]);
  });
  it('refuses a truncated length, an element past the end and a wrong count', () => {
    expect(() => decodeBytesElements(layout.subarray(0, 9))).toThrow(
      /element 1 has a truncated 4-byte length/,
    );
    expect(() => decodeBytesElements(layout.subarray(0, 6))).toThrow(
      /element 0 declares 3 bytes but only 2 remain/,
    );
    expect(() => decodeBytesElements(layout, 2)).toThrow(KServeProtocolError);
    expect(() => decodeBytesElements(layout, 4)).toThrow(
      /the shape needs 4 elements, the binary data holds 3/,
    );
  });
});
