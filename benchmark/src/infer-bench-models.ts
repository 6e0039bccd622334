import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  OnnxAttributeType,
  OnnxDataType,
  encodeOnnxModel,
  convStack,
  floatTensor,
  formatModelConfig,
  generateImageModel,
  modelPaths,
  scaledWeights,
  type ConvLayer,
  type OnnxNode,
  type OnnxTensor,
} from '@smart-routing/model-repo';

/**
 * The models of `npm run benchmark:infer`, all generated, all with real compute:
 *
 *   image-224          model-repo's image classifier (5 convs), pixels [b,3,224,224] -> logits [b,1000]
 *   image-224-batched  the same with `dynamic_batching` in config.pbtxt
 *   image-320          the same classifier at [b,3,320,320] (the request the issue saw refused)
 *   ocr-40x6625        a text-recognition-shaped model with a large output: pixels [b,3,48,320]
 *                      ─ 3 strided convs + ReLU (model-repo's convStack) ─ mean over height ─ [b,40,64] ─ MatMul 64→6625
 *                      ─ logits [b,40,6625] (1 MiB of FP32 per image)
 */

/** One benchmark model: what to feed it and what comes back. */
export interface InferBenchModel {
  /** Model name (the label). */
  name: string;
  /** Its single FP32 input. */
  input: { name: string; shape: number[] };
  /** Its single FP32 output. */
  output: { name: string; shape: number[] };
}

/** The text-recogniser shape's convolutions: three strided layers, height 48 -> 6, width 320 -> 40. */
const OCR_LAYERS: readonly ConvLayer[] = [{ channels: 16 }, { channels: 32 }, { channels: 64 }];
const OCR_STEPS = 40;
const OCR_CLASSES = 6625;

/** The ONNX bytes of the large-output model: input [b,3,48,320], output [b,40,6625]. */
export function encodeOcrModel(seed = 11): Uint8Array {
  const convs = convStack({ input: 'pixels', inputChannels: 3, layers: OCR_LAYERS, seed });
  const nodes: OnnxNode[] = [...convs.nodes];
  const init: OnnxTensor[] = [...convs.initializers];
  const x = convs.output;
  const features = convs.channels;
  // [b,64,6,40] -> mean over the height -> [b,64,40] -> time-major [b,40,64].
  nodes.push({
    opType: 'ReduceMean',
    name: 'pool_h',
    input: [x],
    output: ['pooled'],
    attribute: [
      { name: 'axes', type: OnnxAttributeType.INTS, ints: [2] },
      { name: 'keepdims', type: OnnxAttributeType.INT, i: 0 },
    ],
  });
  nodes.push({
    opType: 'Transpose',
    name: 'to_steps',
    input: ['pooled'],
    output: ['steps'],
    attribute: [{ name: 'perm', type: OnnxAttributeType.INTS, ints: [0, 2, 1] }],
  });
  init.push(scaledWeights('fc.w', [features, OCR_CLASSES], seed + 100, features));
  init.push(floatTensor('fc.b', [OCR_CLASSES], new Float32Array(OCR_CLASSES)));
  nodes.push({ opType: 'MatMul', name: 'fc', input: ['steps', 'fc.w'], output: ['fc.y'] });
  nodes.push({ opType: 'Add', name: 'fc_bias', input: ['fc.y', 'fc.b'], output: ['logits'] });
  return encodeOnnxModel({
    name: 'demo_text_recogniser',
    node: nodes,
    initializer: init,
    input: [{ name: 'pixels', elemType: OnnxDataType.FLOAT, dims: ['batch', 3, 48, OCR_STEPS * 8] }],
    output: [{ name: 'logits', elemType: OnnxDataType.FLOAT, dims: ['batch', OCR_STEPS, OCR_CLASSES] }],
  });
}

/** The benchmark's models, by role. */
export interface InferBenchModels {
  image: InferBenchModel;
  batched: InferBenchModel;
  large: InferBenchModel;
  image320: InferBenchModel;
}

/** Options of `writeInferBenchModels`. */
export interface InferBenchModelOptions {
  /** `preferred_batch_size` of the batched model. Default [4, 8]. */
  preferredBatchSize?: number[];
  /** `max_queue_delay_microseconds` of the batched model. Default 2000. */
  maxQueueDelayMicroseconds?: number;
}

/** Writes the benchmark's models into the repository folder `dir`. */
export async function writeInferBenchModels(
  dir: string,
  options: InferBenchModelOptions = {},
): Promise<InferBenchModels> {
  const image = (name: string, size: number): InferBenchModel => ({
    name,
    input: { name: 'pixels', shape: [1, 3, size, size] },
    output: { name: 'logits', shape: [1, 1000] },
  });
  const models: InferBenchModels = {
    image: image('image-224', 224),
    batched: image('image-224-batched', 224),
    image320: image('image-320', 320),
    large: {
      name: 'ocr-40x6625',
      input: { name: 'pixels', shape: [1, 3, 48, OCR_STEPS * 8] },
      output: { name: 'logits', shape: [1, OCR_STEPS, OCR_CLASSES] },
    },
  };
  await generateImageModel({ dir, name: models.image.name, size: 224 });
  await generateImageModel({ dir, name: models.image320.name, size: 320 });
  await generateImageModel({
    dir,
    name: models.batched.name,
    size: 224,
    dynamicBatching: {
      preferredBatchSize: options.preferredBatchSize ?? [4, 8],
      maxQueueDelayMicroseconds: options.maxQueueDelayMicroseconds ?? 2000,
    },
  });
  const ocr = modelPaths(dir, models.large.name);
  await mkdir(dirname(ocr.modelPath), { recursive: true });
  await writeFile(ocr.modelPath, encodeOcrModel());
  await writeFile(
    ocr.configPath,
    formatModelConfig({
      name: models.large.name,
      platform: 'onnxruntime_onnx',
      maxBatchSize: 8,
      input: [{ name: 'pixels', dataType: 'TYPE_FP32', dims: [3, 48, OCR_STEPS * 8] }],
      output: [{ name: 'logits', dataType: 'TYPE_FP32', dims: [OCR_STEPS, OCR_CLASSES] }],
    }),
  );
  return models;
}

/** The model file of `name` in `dir` (for onnxruntime-node in the benchmark process). */
export function modelFile(dir: string, name: string): string {
  return modelPaths(dir, name).modelPath;
}
