import {
  arrayTypeOf,
  elementCount,
  isKServeDatatype,
  type KServeDatatype,
  type TensorArray,
} from './datatypes.js';
import { KServeProtocolError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * KServe v2 JSON `data` <-> typed tensors. Every element is checked against its datatype (type and
 * range) so that nothing malformed reaches a runtime; each failure names the tensor and element.
 * Like Triton, FP16 and BF16 are refused in JSON requests (send them binary).
 */

const INT_RANGES: Partial<Record<KServeDatatype, [number, number]>> = {
  INT8: [-128, 127],
  UINT8: [0, 255],
  INT16: [-32768, 32767],
  UINT16: [0, 65535],
  INT32: [-2147483648, 2147483647],
  UINT32: [0, 4294967295],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

/** Flattens nested `data` arrays (KServe allows flat or nested row-major data). */
export function flattenJsonData(data: unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown[]): void => {
    for (const x of v) {
      if (Array.isArray(x)) walk(x);
      else out.push(x);
    }
  };
  walk(data);
  return out;
}

/** Options of `tensorFromJson`. */
export interface TensorFromJsonOptions {
  /** 'input' or 'output': how messages name the tensor. Default 'input'. */
  kind?: 'input' | 'output';
  /** Model name, for messages in Triton's wording. Default: none. */
  model?: string;
}

/**
 * A typed tensor from a JSON tensor's parts. `data` may be nested.
 * @throws KServeProtocolError for an unknown datatype, a bad shape, a wrong element count or a bad element.
 */
export function tensorFromJson(
  name: string,
  datatype: string,
  shape: number[],
  data: unknown,
  options: TensorFromJsonOptions = {},
): Tensor {
  const kind = options.kind ?? 'input';
  const what = `${kind} '${name}'`;
  if (!isKServeDatatype(datatype)) throw new KServeProtocolError(`${what}: unknown datatype '${datatype}'`);
  const n = elementCount(shape, what);
  if (!Array.isArray(data)) throw new KServeProtocolError(`${what}: 'data' must be an array`);
  if (datatype === 'FP16' || datatype === 'BF16') {
    throw new KServeProtocolError(
      `${what}: receiving ${datatype} data via JSON is not supported, use the binary tensor data extension`,
    );
  }
  const flat = flattenJsonData(data);
  if (flat.length !== n) {
    const of = options.model === undefined ? '' : ` of model '${options.model}'`;
    throw new KServeProtocolError(
      `unexpected number of elements for ${kind} '${name}'${of}: shape [${shape.join(',')}] needs ${n}, 'data' has ${flat.length}`,
    );
  }
  const bad = (i: number, expected: string): never => {
    throw new KServeProtocolError(
      `unable to parse 'data' of ${kind} '${name}': element ${i} (${JSON.stringify(flat[i])}) is not ${expected}`,
    );
  };
  if (datatype === 'BYTES') {
    const out: Buffer[] = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'string') bad(i, 'a string');
      out[i] = Buffer.from(v as string, 'utf8');
    }
    return { name, datatype, shape, data: out };
  }
  if (datatype === 'BOOL') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'boolean') bad(i, 'a boolean');
      out[i] = v ? 1 : 0;
    }
    return { name, datatype, shape, data: out };
  }
  const range = INT_RANGES[datatype];
  const out = new (arrayTypeOf(datatype))(n);
  if (range) {
    const [min, max] = range;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        bad(i, `an integer in [${min}, ${max}]`);
    }
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
      for (let i = 0; i < n; i++) out[i] = BigInt(flat[i] as number);
    } else {
      (out as Exclude<TensorArray, BigInt64Array | BigUint64Array>).set(flat as number[]);
    }
    return { name, datatype, shape, data: out };
  }
  for (let i = 0; i < n; i++) if (typeof flat[i] !== 'number') bad(i, 'a number');
  (out as Float32Array | Float64Array).set(flat as number[]);
  return { name, datatype, shape, data: out };
}

/** An IEEE half (raw bits) as a number. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A bfloat16 (raw bits) as a number. */
export function bf16ToNumber(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/**
 * A tensor's data as JSON `data` (flat, row-major): numbers, booleans for BOOL, UTF-8 strings for
 * BYTES. 64-bit integers beyond 2^53 lose precision, as in any JSON number.
 */
export function tensorToJsonData(t: Tensor): unknown[] {
  const d = t.data;
  if (Array.isArray(d)) return d.map((b) => b.toString('utf8'));
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
  if (t.datatype === 'BOOL') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (t.datatype === 'FP16') return Array.from(d as Uint16Array, halfToNumber);
  if (t.datatype === 'BF16') return Array.from(d as Uint16Array, bf16ToNumber);
  return Array.from(d as Float32Array);
}
