import { fillDemoWeights } from './demo-models.js';
import { OnnxAttributeType, floatTensor, type OnnxNode, type OnnxTensor } from './onnx.js';

/**
 * A stack of 3x3 convolutions with ReLU, the compute of the generated image-shaped models (the
 * image classifier, the benchmark's text-recogniser shape): each layer is Conv (padding 1, the
 * layer's stride) then ReLU, with seeded weights scaled by sqrt(3 / fan-in) so activations stay of
 * order 1 through the layers.
 *
 *   x [b,C0,H,W] ─ Conv C0→C1 /s1 ─ ReLU ─ Conv C1→C2 /s2 ─ ReLU ─ ... ─ y [b,Cn,H/Πs,W/Πs]
 */

/** One layer of a conv stack. */
export interface ConvLayer {
  /** Output channels. */
  channels: number;
  /** Stride in both directions. Default 2. */
  stride?: number;
}

/** Options of `convStack`. */
export interface ConvStackOptions {
  /** Name of the graph value the stack reads. */
  input: string;
  /** Channels of that input (3 for RGB). */
  inputChannels: number;
  /** The layers, in order. */
  layers: readonly ConvLayer[];
  /** Seed of the first layer's weights (layer l uses seed + l). */
  seed: number;
  /** Prefix of node and initializer names. Default 'conv'. */
  prefix?: string;
}

/** The nodes and weights of a conv stack, and the name of the value it produces. */
export interface ConvStack {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  /** Name of the last ReLU's output. */
  output: string;
  /** Channels of that output. */
  channels: number;
}

/** Seeded weights of `dims`, scaled by sqrt(3 / fanIn). */
export function scaledWeights(name: string, dims: number[], seed: number, fanIn: number): OnnxTensor {
  const w = new Float32Array(dims.reduce((a, b) => a * b, 1));
  fillDemoWeights(w, seed);
  const scale = Math.sqrt(3 / fanIn);
  for (let i = 0; i < w.length; i++) w[i]! *= scale;
  return floatTensor(name, dims, w);
}

/** Builds a stack of 3x3 Conv + ReLU layers (see the module comment). */
export function convStack(options: ConvStackOptions): ConvStack {
  const prefix = options.prefix ?? 'conv';
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  let x = options.input;
  let cin = options.inputChannels;
  options.layers.forEach((layer, l) => {
    const cout = layer.channels;
    const stride = layer.stride ?? 2;
    const name = `${prefix}${l}`;
    initializers.push(scaledWeights(`${name}.w`, [cout, cin, 3, 3], options.seed + l, cin * 9));
    initializers.push(floatTensor(`${name}.b`, [cout], new Float32Array(cout)));
    nodes.push({
      opType: 'Conv',
      name,
      input: [x, `${name}.w`, `${name}.b`],
      output: [`${name}.y`],
      attribute: [
        { name: 'kernel_shape', type: OnnxAttributeType.INTS, ints: [3, 3] },
        { name: 'strides', type: OnnxAttributeType.INTS, ints: [stride, stride] },
        { name: 'pads', type: OnnxAttributeType.INTS, ints: [1, 1, 1, 1] },
      ],
    });
    nodes.push({ opType: 'Relu', name: `${name}.relu`, input: [`${name}.y`], output: [`${name}.relu.y`] });
    x = `${name}.relu.y`;
    cin = cout;
  });
  return { nodes, initializers, output: x, channels: cin };
}
