import {
  elementByteSize,
  elementCount,
  isKServeDatatype,
  type KServeDatatype,
  type TensorArray,
} from './datatypes.js';
import { KServeProtocolError } from './errors.js';

/**
 * A typed tensor: the one in-memory form of a KServe v2 tensor, whatever it arrived as (JSON,
 * Triton binary, gRPC raw contents). Row-major; `data` holds exactly the shape's element count.
 */
export interface Tensor {
  name: string;
  datatype: KServeDatatype;
  shape: number[];
  /** A typed array for fixed-size datatypes (see `arrayTypeOf`); one Buffer per element for BYTES. */
  data: TensorArray | Buffer[];
  /** Tensor parameters other than the binary extension's, passed through. */
  parameters?: Record<string, unknown>;
}

/** Size of the tensor's data in Triton's binary layout (BYTES: 4-byte length prefix per element). */
export function tensorByteSize(t: Tensor): number {
  if (Array.isArray(t.data)) {
    let n = 0;
    for (const b of t.data) n += 4 + b.length;
    return n;
  }
  return t.data.byteLength;
}

/**
 * Checks that a tensor is well formed: a known datatype, a valid shape, and data of the right kind
 * and length for both. Returns the tensor.
 * @throws KServeProtocolError naming the tensor.
 */
export function checkTensor(t: Tensor): Tensor {
  const what = `tensor '${t.name}'`;
  if (!isKServeDatatype(t.datatype))
    throw new KServeProtocolError(`${what}: unknown datatype '${String(t.datatype)}'`);
  const n = elementCount(t.shape, what);
  if (t.datatype === 'BYTES') {
    if (!Array.isArray(t.data))
      throw new KServeProtocolError(`${what}: BYTES data must be a list of Buffers`);
    if (t.data.length !== n) {
      throw new KServeProtocolError(
        `${what}: shape [${t.shape.join(',')}] needs ${n} elements, data has ${t.data.length}`,
      );
    }
    return t;
  }
  if (Array.isArray(t.data))
    throw new KServeProtocolError(`${what}: ${t.datatype} data must be a typed array`);
  const size = elementByteSize(t.datatype)!;
  if (t.data.byteLength !== n * size) {
    throw new KServeProtocolError(
      `${what}: shape [${t.shape.join(',')}] needs ${n * size} bytes of ${t.datatype}, data has ${t.data.byteLength}`,
    );
  }
  return t;
}
