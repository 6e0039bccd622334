import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fillDemoWeights } from './demo-models.js';
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
 * image-shaped FP32 input, three strided 3x3 convolutions with ReLU, global average pooling and a
 * dense layer. At 224x224 that is ~35 M multiply-adds per image (a few ms on one core), so a run
 * costs what a small CNN costs, unlike the embedding demo models' table lookup.
 *
 *   pixels [b,3,S,S] ─ Conv 3→16 /2 ─ ReLU ─ Conv 16→32 /2 ─ ReLU ─ Conv 32→64 /2 ─ ReLU
 *          ─ GlobalAveragePool ─ Flatten ─ MatMul 64→classes ─ Add ─ logits [b,classes]
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

const CHANNELS = [3, 16, 32, 64];

/** Default name of the generated image model. */
export const IMAGE_MODEL_NAME = 'image-1';

/** Largest batch of the image model's config. */
export const IMAGE_MAX_BATCH_SIZE = 8;

function weights(name: string, dims: number[], seed: number, fanIn: number): OnnxTensor {
  const w = new Float32Array(dims.reduce((a, b) => a * b, 1));
  fillDemoWeights(w, seed);
  // Scaled so activations stay of order 1 through the layers.
  const scale = Math.sqrt(3 / fanIn);
  for (let i = 0; i < w.length; i++) w[i]! *= scale;
  return floatTensor(name, dims, w);
}

/** The ONNX bytes of the image model. */
export function encodeImageModel(options: ImageModelOptions = {}): Uint8Array {
  const size = options.size ?? 224;
  const classes = options.classes ?? 1000;
  const seed = options.seed ?? 7;
  const nodes: OnnxNode[] = [];
  const init: OnnxTensor[] = [];
  let x = 'pixels';
  for (let l = 0; l < CHANNELS.length - 1; l++) {
    const cin = CHANNELS[l]!;
    const cout = CHANNELS[l + 1]!;
    init.push(weights(`conv${l}.w`, [cout, cin, 3, 3], seed + l, cin * 9));
    init.push(floatTensor(`conv${l}.b`, [cout], new Float32Array(cout)));
    nodes.push({
      opType: 'Conv',
      name: `conv${l}`,
      input: [x, `conv${l}.w`, `conv${l}.b`],
      output: [`conv${l}.y`],
      attribute: [
        { name: 'kernel_shape', type: OnnxAttributeType.INTS, ints: [3, 3] },
        { name: 'strides', type: OnnxAttributeType.INTS, ints: [2, 2] },
        { name: 'pads', type: OnnxAttributeType.INTS, ints: [1, 1, 1, 1] },
      ],
    });
    nodes.push({ opType: 'Relu', name: `relu${l}`, input: [`conv${l}.y`], output: [`relu${l}.y`] });
    x = `relu${l}.y`;
  }
  const last = CHANNELS[CHANNELS.length - 1]!;
  nodes.push({ opType: 'GlobalAveragePool', name: 'pool', input: [x], output: ['pool.y'] });
  nodes.push({
    opType: 'Flatten',
    name: 'flatten',
    input: ['pool.y'],
    output: ['features'],
    attribute: [{ name: 'axis', type: OnnxAttributeType.INT, i: 1 }],
  });
  init.push(weights('fc.w', [last, classes], seed + 100, last));
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
