import { ModelConfigError, type ModelConfig, type TensorConfig } from './model-config.js';

/**
 * Config versus graph, as Triton's ONNX backend checks them at load: the config's tensors must
 * exist in the graph with the same type and compatible dims, every graph input must be listed,
 * and a side the config leaves empty is filled in from the graph (Triton's auto-complete). The
 * uploader writes configs with the same rule, so a config it writes always passes this check.
 */

/** A graph input or output, as a runtime or an ONNX reader reports it. */
export interface GraphTensor {
  name: string;
  /** Triton data type ('TYPE_FP32'); undefined when the value has no Triton type (non-tensor, complex). */
  dataType?: string;
  /** How to name the type in an error when `dataType` is undefined, e.g. 'complex64'. */
  typeLabel?: string;
  /** Dimensions: positive sizes; symbolic names, 0 or -1 for variable ones. */
  dims: (number | string)[];
}

/** A graph's inputs and outputs. */
export interface GraphSignature {
  inputs: GraphTensor[];
  outputs: GraphTensor[];
}

/** The shape a client sees for config dims: with a leading -1 batch dimension when the model batches. */
export function batchedShape(maxBatchSize: number, dims: readonly number[]): number[] {
  return maxBatchSize > 0 ? [-1, ...dims] : [...dims];
}

/**
 * The config dims of a graph tensor (the batch-dimension rule): variable dimensions become -1, and
 * with `maxBatchSize > 0` the leading dimension must be variable and is dropped, leaving at least one.
 * @throws ModelConfigError naming the tensor when the graph cannot batch that way.
 */
export function configDimsFromGraph(
  kind: 'input' | 'output',
  tensor: GraphTensor,
  maxBatchSize: number,
): number[] {
  // Symbolic names (`batch_size`, `sequence_length`) and unknown sizes are variable: -1 for Triton.
  const dims = tensor.dims.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
  if (maxBatchSize === 0) return dims;
  if (dims.length < 2) {
    throw new ModelConfigError(
      `${kind} '${tensor.name}' has shape [${tensor.dims.join(', ')}]: with max_batch_size > 0 every tensor needs a batch dimension and at least one more; use max_batch_size: 0`,
    );
  }
  if (dims[0] !== -1) {
    throw new ModelConfigError(
      `${kind} '${tensor.name}' has a fixed batch dimension of ${dims[0]}, so the model cannot batch; use max_batch_size: 0`,
    );
  }
  return dims.slice(1);
}

/** The config tensor for a graph tensor. @throws ModelConfigError (type or batch dimension). */
export function tensorConfigFromGraph(
  kind: 'input' | 'output',
  tensor: GraphTensor,
  maxBatchSize: number,
): TensorConfig {
  if (!tensor.dataType) {
    throw new ModelConfigError(
      `${kind} '${tensor.name}' has unsupported type '${tensor.typeLabel ?? 'non-tensor'}'`,
    );
  }
  return {
    name: tensor.name,
    dataType: tensor.dataType,
    dims: configDimsFromGraph(kind, tensor, maxBatchSize),
  };
}

function checkSide(
  kind: 'input' | 'output',
  config: ModelConfig,
  listed: TensorConfig[],
  graph: GraphTensor[],
): TensorConfig[] {
  if (listed.length === 0) return graph.map((g) => tensorConfigFromGraph(kind, g, config.maxBatchSize));
  for (const t of listed) {
    const g = graph.find((v) => v.name === t.name);
    if (!g) {
      throw new ModelConfigError(
        `unexpected ${kind} '${t.name}' in the config, the model's ${kind}s are [${graph.map((v) => `'${v.name}'`).join(', ')}]`,
      );
    }
    if (g.dataType !== t.dataType) {
      throw new ModelConfigError(
        `unexpected datatype ${t.dataType} for ${kind} '${t.name}', the model expects ${g.dataType ?? g.typeLabel ?? 'a non-tensor'}`,
      );
    }
    if (g.dims.length > 0) {
      const want = batchedShape(config.maxBatchSize, t.dims);
      const fits =
        want.length === g.dims.length &&
        want.every((d, i) => {
          const have = g.dims[i];
          return d === -1 || typeof have !== 'number' || have === d || have <= 0;
        });
      if (!fits) {
        throw new ModelConfigError(
          `${kind} '${t.name}' dims [${want.join(',')}] (with batch) do not match the model's [${g.dims.join(',')}]`,
        );
      }
    }
  }
  if (kind === 'input') {
    const missing = graph.filter((g) => !listed.some((t) => t.name === g.name));
    if (missing.length > 0) {
      throw new ModelConfigError(
        `the config lists ${listed.length} inputs but the model has ${graph.length}; missing [${missing.map((m) => `'${m.name}'`).join(', ')}]`,
      );
    }
  }
  return listed;
}

/**
 * Checks a config against its graph and returns the config completed from the graph (inputs or
 * outputs the config leaves empty). The argument is not changed.
 * @throws ModelConfigError with the reason they do not fit, in Triton's words where it has them.
 */
export function reconcileModelConfig(config: ModelConfig, graph: GraphSignature): ModelConfig {
  const input = checkSide('input', config, config.input, graph.inputs);
  const output = checkSide('output', config, config.output, graph.outputs);
  return { ...config, input, output };
}
