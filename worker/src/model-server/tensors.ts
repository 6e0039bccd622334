import { MODEL_SERVER_ERRORS } from './errors.js';
import type { GraphSignature, GraphTensor } from '@smart-routing/model-repo';
import type { SessionSignature, ThreadTensor, ValueSignature } from './session-thread.js';

/**
 * KServe v2 JSON tensors <-> ONNX Runtime tensors. Validation here is what keeps a bad request
 * from ever reaching ONNX Runtime: names, datatypes, shapes and every element are checked, and
 * each failure is a 400 with a message that names the input.
 */

/** KServe datatype -> ORT tensor type, for the types JSON can carry. */
const KSERVE_TO_ORT: Record<string, string> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

/** ORT tensor type -> KServe datatype. */
const ORT_TO_KSERVE: Record<string, string> = {
  ...Object.fromEntries(Object.entries(KSERVE_TO_ORT).map(([k, v]) => [v, k])),
  float16: 'FP16',
};

/** ORT tensor type -> Triton config data type. */
const ORT_TO_TRITON: Record<string, string> = {
  float32: 'TYPE_FP32',
  float64: 'TYPE_FP64',
  float16: 'TYPE_FP16',
  int8: 'TYPE_INT8',
  int16: 'TYPE_INT16',
  int32: 'TYPE_INT32',
  int64: 'TYPE_INT64',
  uint8: 'TYPE_UINT8',
  uint16: 'TYPE_UINT16',
  uint32: 'TYPE_UINT32',
  uint64: 'TYPE_UINT64',
  bool: 'TYPE_BOOL',
  string: 'TYPE_STRING',
};

function graphTensor(v: ValueSignature): GraphTensor {
  const dataType = v.type ? ORT_TO_TRITON[v.type] : undefined;
  return { name: v.name, dataType, typeLabel: v.type, dims: v.shape };
}

/** A session's signature in Triton's terms, for the config-vs-graph check. */
export function graphSignature(sig: SessionSignature): GraphSignature {
  return { inputs: sig.inputs.map(graphTensor), outputs: sig.outputs.map(graphTensor) };
}

/** The ORT tensor type for a KServe datatype, or undefined when JSON requests cannot carry it. */
export function kserveToOrtType(datatype: string): string | undefined {
  return KSERVE_TO_ORT[datatype];
}

/** The KServe datatype of an ORT tensor type ('float32' -> 'FP32'). */
export function ortToKserveType(type: string): string | undefined {
  return ORT_TO_KSERVE[type];
}

const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** Number of elements of a shape; NaN when a dimension is not a non-negative integer. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return NaN;
    n *= d;
  }
  return n;
}

/** Flattens nested `data` arrays (KServe allows either flat or nested row-major data). */
export function flattenData(data: unknown[]): unknown[] {
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

/**
 * Converts one request input into an ORT tensor of `ortType`. `data` must already be flat and
 * hold exactly the shape's element count.
 */
export function toThreadTensor(
  name: string,
  ortType: string,
  shape: number[],
  data: unknown[],
): ThreadTensor {
  const bad = (i: number, what: string): never => {
    throw MODEL_SERVER_ERRORS.badRequest(
      `unable to parse 'data' of input '${name}': element ${i} (${JSON.stringify(data[i])}) is not ${what}`,
    );
  };
  const n = data.length;
  const range = INT_RANGES[ortType];
  if (range) {
    const [min, max] = range;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        bad(i, `an integer in [${min}, ${max}]`);
    }
    const nums = data as number[];
    const out =
      ortType === 'int64'
        ? BigInt64Array.from(nums, (v) => BigInt(v))
        : ortType === 'uint64'
          ? BigUint64Array.from(nums, (v) => BigInt(v))
          : ortType === 'int32'
            ? Int32Array.from(nums)
            : ortType === 'uint32'
              ? Uint32Array.from(nums)
              : ortType === 'int16'
                ? Int16Array.from(nums)
                : ortType === 'uint16'
                  ? Uint16Array.from(nums)
                  : ortType === 'int8'
                    ? Int8Array.from(nums)
                    : Uint8Array.from(nums);
    return { type: ortType, dims: shape, data: out };
  }
  switch (ortType) {
    case 'float32':
    case 'float64':
      for (let i = 0; i < n; i++) if (typeof data[i] !== 'number') bad(i, 'a number');
      return {
        type: ortType,
        dims: shape,
        data:
          ortType === 'float32' ? Float32Array.from(data as number[]) : Float64Array.from(data as number[]),
      };
    case 'bool':
      for (let i = 0; i < n; i++) if (typeof data[i] !== 'boolean') bad(i, 'a boolean');
      return { type: ortType, dims: shape, data: Uint8Array.from(data as boolean[], (v) => (v ? 1 : 0)) };
    case 'string':
      for (let i = 0; i < n; i++) if (typeof data[i] !== 'string') bad(i, 'a string');
      return { type: ortType, dims: shape, data: data as string[] };
    default:
      throw MODEL_SERVER_ERRORS.badRequest(
        `input '${name}': tensor type '${ortType}' is not supported in JSON`,
      );
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** An ORT result as KServe JSON `{datatype, shape, data}` (flat row-major data). */
export function fromThreadTensor(t: ThreadTensor): { datatype: string; shape: number[]; data: unknown[] } {
  const datatype = ORT_TO_KSERVE[t.type];
  if (!datatype) throw MODEL_SERVER_ERRORS.internal(`output tensor type '${t.type}' has no KServe datatype`);
  let data: unknown[];
  if (Array.isArray(t.data)) data = t.data;
  else if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array)
    data = Array.from(t.data, Number);
  else if (t.type === 'bool') data = Array.from(t.data as Uint8Array, (v) => v !== 0);
  else if (t.type === 'float16') data = Array.from(t.data as Uint16Array, halfToFloat);
  else data = Array.from(t.data as Float32Array);
  return { datatype, shape: t.dims, data };
}
