import { fileURLToPath } from 'node:url';
import { decodeBytesElements, encodeBytesElements } from './bytes-tensor.js';
import {
  arrayFromBytes,
  arrayTypeOf,
  bytesOfArray,
  elementByteSize,
  elementCount,
  isKServeDatatype,
} from './datatypes.js';
import { KServeProtocolError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * KServe v2 gRPC tensors (`proto/grpc_service.proto`, loaded with @grpc/proto-loader): a tensor's
 * data is either its entry of `raw_input_contents` / `raw_output_contents` (the binary layout) or
 * the typed `contents` field for its datatype.
 */

/** Path of the KServe v2 gRPC service definition (`inference.GRPCInferenceService`). */
export const KSERVE_GRPC_PROTO_PATH = fileURLToPath(new URL('../proto/grpc_service.proto', import.meta.url));

/** `InferTensorContents` as proto-loader gives it (longs as numbers or strings). */
export interface GrpcTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (number | string)[];
  uint_contents?: number[];
  uint64_contents?: (number | string)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

const CONTENTS_FIELD: Record<string, keyof GrpcTensorContents> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/**
 * A typed tensor from its binary bytes (gRPC raw contents, or a binary HTTP part): one copy into
 * memory of its own, or with `view` a typed array over `bytes` itself when they are aligned for
 * the datatype (the caller then owns what the tensor points into); BYTES parsed from the
 * length-prefixed layout.
 * @throws KServeProtocolError when the bytes do not fit the shape.
 */
export function tensorFromRaw(
  kind: 'input' | 'output',
  name: string,
  datatype: string,
  shape: number[],
  bytes: Uint8Array,
  view = false,
): Tensor {
  const what = `${kind} '${name}'`;
  if (!isKServeDatatype(datatype)) throw new KServeProtocolError(`${what}: unknown datatype '${datatype}'`);
  const n = elementCount(shape, what);
  if (datatype === 'BYTES') {
    return { name, datatype, shape, data: decodeBytesElements(Buffer.from(bytes), n, what) };
  }
  const size = elementByteSize(datatype)!;
  if (bytes.byteLength !== n * size) {
    throw new KServeProtocolError(
      `${what}: unexpected binary_data_size ${bytes.byteLength}, shape [${shape.join(',')}] of ${datatype} needs ${n * size} bytes`,
    );
  }
  if (view && bytes.byteOffset % size === 0) {
    return {
      name,
      datatype,
      shape,
      data: new (arrayTypeOf(datatype))(bytes.buffer as ArrayBuffer, bytes.byteOffset, n),
    };
  }
  return { name, datatype, shape, data: arrayFromBytes(datatype, bytes) };
}

/** A tensor's data in the binary layout (a view for fixed-size data). */
export function rawOfTensor(t: Tensor): Buffer {
  return Array.isArray(t.data) ? encodeBytesElements(t.data) : bytesOfArray(t.data);
}

/**
 * A typed tensor from gRPC `contents`.
 * @throws KServeProtocolError for a datatype without a contents field (FP16, BF16) or a wrong count.
 */
export function tensorFromContents(
  name: string,
  datatype: string,
  shape: number[],
  contents: GrpcTensorContents | undefined,
): Tensor {
  const what = `input '${name}'`;
  if (!isKServeDatatype(datatype)) throw new KServeProtocolError(`${what}: unknown datatype '${datatype}'`);
  const field = CONTENTS_FIELD[datatype];
  if (!field) throw new KServeProtocolError(`${what}: ${datatype} data must be sent in raw_input_contents`);
  const n = elementCount(shape, what);
  const values = (contents?.[field] ?? []) as unknown[];
  if (values.length !== n) {
    throw new KServeProtocolError(
      `unexpected number of elements for ${what}: shape [${shape.join(',')}] needs ${n}, '${field}' has ${values.length}`,
    );
  }
  if (datatype === 'BYTES')
    return { name, datatype, shape, data: (values as Uint8Array[]).map((b) => Buffer.from(b)) };
  if (datatype === 'BOOL')
    return { name, datatype, shape, data: Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0)) };
  const out = new (arrayTypeOf(datatype))(n);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = BigInt(values[i] as number | string);
  } else {
    (out as Float64Array).set(values as number[]);
  }
  return { name, datatype, shape, data: out };
}
