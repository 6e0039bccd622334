import { KServeProtocolError } from './errors.js';

/**
 * KServe v2 datatypes and the typed array that holds each one's elements. FP16 and BF16 have no
 * JavaScript number type: their elements are the raw 16-bit patterns in a Uint16Array. BOOL is one
 * byte per element (0 or 1), as in Triton's binary layout. BYTES elements are a list of Buffers.
 */

/** A KServe v2 tensor datatype. */
export type KServeDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BF16'
  | 'BYTES';

/** The typed arrays that hold fixed-size tensor elements. */
export type TensorArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

type ArrayConstructor = {
  new (length: number): TensorArray;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorArray;
  readonly BYTES_PER_ELEMENT: number;
};

const ARRAYS: Record<Exclude<KServeDatatype, 'BYTES'>, ArrayConstructor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
  BF16: Uint16Array,
};

/** Every KServe v2 datatype. */
export const KSERVE_DATATYPES: readonly KServeDatatype[] = [
  ...Object.keys(ARRAYS),
  'BYTES',
] as KServeDatatype[];

/** True for a KServe v2 datatype name. */
export function isKServeDatatype(s: unknown): s is KServeDatatype {
  return typeof s === 'string' && (s === 'BYTES' || Object.hasOwn(ARRAYS, s));
}

/** Bytes per element of a fixed-size datatype; undefined for BYTES. */
export function elementByteSize(datatype: KServeDatatype): number | undefined {
  return datatype === 'BYTES' ? undefined : ARRAYS[datatype].BYTES_PER_ELEMENT;
}

/** The typed array constructor for a fixed-size datatype. */
export function arrayTypeOf(datatype: Exclude<KServeDatatype, 'BYTES'>): ArrayConstructor {
  return ARRAYS[datatype];
}

/**
 * Number of elements of a shape.
 * @throws KServeProtocolError when a dimension is not a non-negative safe integer.
 */
export function elementCount(shape: readonly number[], what = 'tensor'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new KServeProtocolError(`${what}: 'shape' must be an array of non-negative integers`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new KServeProtocolError(`${what}: the shape has too many elements`);
  return n;
}

/**
 * Copies `bytes` (little-endian elements) into a new typed array of `datatype` with its own
 * ArrayBuffer, so the result can be transferred to another thread without touching the buffer
 * the bytes came from. One memcpy; no per-element work.
 */
export function arrayFromBytes(datatype: Exclude<KServeDatatype, 'BYTES'>, bytes: Uint8Array): TensorArray {
  const Ctor = ARRAYS[datatype];
  const out = new Ctor(bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return out;
}

/** The bytes of a typed array (a view, no copy). Little-endian on the little-endian hosts Node runs on. */
export function bytesOfArray(data: TensorArray): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
