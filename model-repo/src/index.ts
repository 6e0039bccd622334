export {
  ModelConfigError,
  TRITON_DATA_TYPES,
  formatModelConfig,
  onnxTypeToTriton,
  parseModelConfig,
  tritonTypeToKserve,
} from './model-config.js';
export type { DynamicBatchingConfig, ModelConfig, TensorConfig } from './model-config.js';
export {
  batchedShape,
  configDimsFromGraph,
  reconcileModelConfig,
  tensorConfigFromGraph,
} from './config-reconcile.js';
export type { GraphSignature, GraphTensor } from './config-reconcile.js';
export {
  CONFIG_FILE,
  MODEL_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  isValidModelName,
  listModels,
  modelPaths,
} from './repository.js';
export type { ModelPaths } from './repository.js';
export {
  DEFAULT_DEMO_COUNT,
  DEFAULT_DEMO_HIDDEN_SIZE,
  DEFAULT_DEMO_SEED,
  DEFAULT_DEMO_SIZE_MB,
  DEMO_MAX_BATCH_SIZE,
  demoModelConfig,
  demoModelName,
  demoModelSeed,
  demoVocabSize,
  encodeDemoModel,
  fillDemoWeights,
  generateDemoModels,
} from './demo-models.js';
export type { DemoModelOptions } from './demo-models.js';
export {
  IMAGE_MAX_BATCH_SIZE,
  IMAGE_MODEL_NAME,
  encodeImageModel,
  generateImageModel,
  imageModelConfig,
  IMAGE_MODEL_LAYERS,
} from './image-model.js';
export { convStack, scaledWeights } from './conv-stack.js';
export type { ConvLayer, ConvStack, ConvStackOptions } from './conv-stack.js';
export type { ImageModelOptions } from './image-model.js';
export {
  BERT_SPECIAL_IDS,
  bertVocabulary,
  demoTokenizerConfig,
  demoTokenizerJson,
  demoVocabulary,
} from './demo-tokenizer.js';
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
