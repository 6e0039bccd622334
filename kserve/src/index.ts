export { KServeProtocolError } from './errors.js';
export {
  KSERVE_DATATYPES,
  arrayFromBytes,
  arrayTypeOf,
  bytesOfArray,
  elementByteSize,
  elementCount,
  isKServeDatatype,
} from './datatypes.js';
export type { KServeDatatype, TensorArray } from './datatypes.js';
export { checkTensor, tensorByteSize } from './tensor.js';
export type { Tensor } from './tensor.js';
export { decodeBytesElements, encodeBytesElements } from './bytes-tensor.js';
export {
  bf16ToNumber,
  flattenJsonData,
  halfToNumber,
  tensorFromJson,
  tensorToJsonData,
} from './json-tensor.js';
export type { TensorFromJsonOptions } from './json-tensor.js';
export {
  INFERENCE_HEADER_CONTENT_LENGTH,
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  parseHeaderLength,
  wantsBinaryOutput,
} from './http-infer.js';
export type {
  DecodeInferRequestOptions,
  EncodeInferRequestOptions,
  EncodedInferMessage,
  InferRequest,
  InferResponse,
  RequestedOutput,
} from './http-infer.js';
export { KSERVE_GRPC_PROTO_PATH, rawOfTensor, tensorFromContents, tensorFromRaw } from './grpc-tensors.js';
export type { GrpcTensorContents } from './grpc-tensors.js';
