import { KServeProtocolError } from './errors.js';

/**
 * BYTES tensors in Triton's binary layout: each element is a 4-byte little-endian unsigned length
 * followed by that many bytes, elements back to back with no padding (Triton's
 * binary data extension document; tritonclient.utils serialize_byte_tensor / deserialize_bytes_tensor).
 */

/** Serialises BYTES elements into Triton's length-prefixed layout. */
export function encodeBytesElements(elements: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const e of elements) size += 4 + e.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.length, at);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

/**
 * Parses Triton's length-prefixed layout. The elements are views into `bytes` (no copy).
 * @param expected when given, the element count the shape needs.
 * @throws KServeProtocolError when a length runs past the end, or the count is not `expected`.
 */
export function decodeBytesElements(bytes: Uint8Array, expected?: number, what = 'BYTES tensor'): Buffer[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) {
      throw new KServeProtocolError(`${what}: element ${out.length} has a truncated 4-byte length`);
    }
    const len = buf.readUInt32LE(at);
    if (at + 4 + len > buf.length) {
      throw new KServeProtocolError(
        `${what}: element ${out.length} declares ${len} bytes but only ${buf.length - at - 4} remain`,
      );
    }
    out.push(buf.subarray(at + 4, at + 4 + len));
    at += 4 + len;
    if (expected !== undefined && out.length > expected) break;
  }
  if (expected !== undefined && out.length !== expected) {
    throw new KServeProtocolError(
      `${what}: the shape needs ${expected} elements, the binary data holds ${out.length > expected ? 'more' : out.length}`,
    );
  }
  return out;
}
