import { MODEL_SERVER_ERRORS } from './errors.js';
import type { KServeDatatype, Tensor, TensorArray } from '@smart-routing/kserve';
import type { GraphSignature, GraphTensor } from '@smart-routing/model-repo';
import type { SessionSignature, ThreadTensor, ValueSignature } from './session-thread.js';

/**
 * Typed tensors (`@smart-routing/kserve`) <-> ONNX Runtime tensors, and ORT's types in KServe's
 * and Triton's names. The typed arrays pass through unchanged: bytes that arrived binary reach the
 * session, and its results leave, without a per-element conversion.
 */

/** KServe datatype -> ORT tensor type. */
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
  FP16: 'float16',
  BYTES: 'string',
};

/** ORT tensor type -> KServe datatype. */
const ORT_TO_KSERVE: Record<string, string> = Object.fromEntries(
  Object.entries(KSERVE_TO_ORT).map(([k, v]) => [v, k]),
);

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

/** The ORT tensor type for a KServe datatype, or undefined when ORT has none (BF16). */
export function kserveToOrtType(datatype: string): string | undefined {
  return KSERVE_TO_ORT[datatype];
}

/** The KServe datatype of an ORT tensor type ('float32' -> 'FP32'). */
export function ortToKserveType(type: string): string | undefined {
  return ORT_TO_KSERVE[type];
}

/**
 * A typed tensor as ONNX Runtime takes it. Fixed-size data is passed as is (the same typed array:
 * no copy, no number[]); BYTES elements become the UTF-8 strings onnxruntime-node's string tensors
 * hold.
 * @throws ModelServerError (400) for a datatype ONNX Runtime cannot take.
 */
export function tensorToOrt(t: Tensor): ThreadTensor {
  const type = KSERVE_TO_ORT[t.datatype];
  if (!type)
    throw MODEL_SERVER_ERRORS.badRequest(`input '${t.name}': datatype '${t.datatype}' is not supported`);
  const data = Array.isArray(t.data) ? t.data.map((b) => b.toString('utf8')) : t.data;
  return { type, dims: t.shape, data };
}

/**
 * An ONNX Runtime result as a typed tensor, its typed array kept as is.
 * @throws ModelServerError (500) for an ORT type with no KServe datatype.
 */
export function tensorFromOrt(name: string, t: ThreadTensor): Tensor {
  const datatype = ORT_TO_KSERVE[t.type] as KServeDatatype | undefined;
  if (!datatype) throw MODEL_SERVER_ERRORS.internal(`output tensor type '${t.type}' has no KServe datatype`);
  const data = Array.isArray(t.data) ? t.data.map((s) => Buffer.from(s, 'utf8')) : (t.data as TensorArray);
  return { name, datatype, shape: t.dims, data };
}
