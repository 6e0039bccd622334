export {
  OnnxAttributeType,
  OnnxDataType,
  OnnxFormatError,
  encodeOnnxModel,
  floatTensor,
  int64Tensor,
  readOnnxSignature,
} from './onnx.js';
export type {
  OnnxAttribute,
  OnnxDim,
  OnnxGraph,
  OnnxNode,
  OnnxSignature,
  OnnxTensor,
  OnnxTensorSignature,
} from './onnx.js';
