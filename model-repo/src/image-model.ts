import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { convStack, scaledWeights, type ConvLayer } from './conv-stack.js';
import { formatModelConfig, type DynamicBatchingConfig, type ModelConfig } from './model-config.js';
import {
  OnnxAttributeType,
  OnnxDataType,
  encodeOnnxModel,
  floatTensor,
  type OnnxNode,
  type OnnxTensor,
} from './onnx.js';
import { CONFIG_FILE, MODEL_FILE, modelPaths } from './repository.js';

/**
 * A generated image classifier with real compute, for benchmarks of the tensor path: an
 * image-shaped FP32 input, five 3x3 convolutions with ReLU (`convStack`), global average pooling
 * and a dense layer. At 224x224 that is ~92 M multiply-adds per image (several ms on one core), so
 * a run costs what a small CNN costs and the model, not the plumbing around it, sets the pace.
 *
 *   pixels [b,3,S,S] ─ Conv 3→16 /2 ─ Conv 16→32 /2 ─ Conv 32→32 /1 ─ Conv 32→64 /2 ─ Conv 64→64 /1
 *          (each with ReLU) ─ GlobalAveragePool ─ Flatten ─ MatMul 64→classes ─ Add ─ logits [b,classes]
 */

/** Options of `encodeImageModel`. */
export interface ImageModelOptions {
  /** Height and width of the input. Default 224. */
  size?: number;
  /** Number of output classes. Default 1000. */
  classes?: number;
  /** Weights seed. Default 7. */
  seed?: number;
}

/** The image model's convolutions. */
export const IMAGE_MODEL_LAYERS: readonly ConvLayer[] = [
  { channels: 16, stride: 2 },
  { channels: 32, stride: 2 },
  { channels: 32, stride: 1 },
  { channels: 64, stride: 2 },
  { channels: 64, stride: 1 },
];

/** Default name of the generated image model. */
export const IMAGE_MODEL_NAME = 'image-1';

/** Largest batch of the image model's config. */
export const IMAGE_MAX_BATCH_SIZE = 8;

/** The ONNX bytes of the image model. */
export function encodeImageModel(options: ImageModelOptions = {}): Uint8Array {
  const size = options.size ?? 224;
  const classes = options.classes ?? 1000;
  const seed = options.seed ?? 7;
  const convs = convStack({ input: 'pixels', inputChannels: 3, layers: IMAGE_MODEL_LAYERS, seed });
  const nodes: OnnxNode[] = [...convs.nodes];
  const init: OnnxTensor[] = [...convs.initializers];
  nodes.push({ opType: 'GlobalAveragePool', name: 'pool', input: [convs.output], output: ['pool.y'] });
  nodes.push({
    opType: 'Flatten',
    name: 'flatten',
    input: ['pool.y'],
    output: ['features'],
    attribute: [{ name: 'axis', type: OnnxAttributeType.INT, i: 1 }],
  });
  init.push(scaledWeights('fc.w', [convs.channels, classes], seed + 100, convs.channels));
  init.push(floatTensor('fc.b', [classes], new Float32Array(classes)));
  nodes.push({ opType: 'MatMul', name: 'fc', input: ['features', 'fc.w'], output: ['fc.y'] });
  nodes.push({ opType: 'Add', name: 'fc_bias', input: ['fc.y', 'fc.b'], output: ['logits'] });
  return encodeOnnxModel({
    name: 'demo_image_classifier',
    node: nodes,
    initializer: init,
    input: [{ name: 'pixels', elemType: OnnxDataType.FLOAT, dims: ['batch', 3, size, size] }],
    output: [{ name: 'logits', elemType: OnnxDataType.FLOAT, dims: ['batch', classes] }],
  });
}

/** The image model's Triton config, with `dynamic_batching` when given. */
export function imageModelConfig(
  name: string,
  options: { size?: number; classes?: number; dynamicBatching?: DynamicBatchingConfig } = {},
): ModelConfig {
  const size = options.size ?? 224;
  const config: ModelConfig = {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize: IMAGE_MAX_BATCH_SIZE,
    input: [{ name: 'pixels', dataType: 'TYPE_FP32', dims: [3, size, size] }],
    output: [{ name: 'logits', dataType: 'TYPE_FP32', dims: [options.classes ?? 1000] }],
  };
  if (options.dynamicBatching) config.dynamicBatching = options.dynamicBatching;
  return config;
}

/**
 * Writes the image model into `dir/<name>` (config.pbtxt and 1/model.onnx), atomically by rename.
 * @returns the model folder.
 */
export async function generateImageModel(
  options: ImageModelOptions & { dir: string; name?: string; dynamicBatching?: DynamicBatchingConfig },
): Promise<string> {
  const name = options.name ?? IMAGE_MODEL_NAME;
  const paths = modelPaths(options.dir, name);
  const tmp = join(options.dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(join(tmp, '1'), { recursive: true });
    await writeFile(join(tmp, '1', MODEL_FILE), encodeImageModel(options));
    await writeFile(join(tmp, CONFIG_FILE), formatModelConfig(imageModelConfig(name, options)));
    await rm(paths.dir, { recursive: true, force: true });
    await rename(tmp, paths.dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return paths.dir;
}
