import {
  ModelConfigError,
  onnxTypeToTriton,
  tensorConfigFromGraph,
  type ModelConfig,
  type OnnxSignature,
  type OnnxTensorSignature,
  type TensorConfig,
} from '@smart-routing/model-repo';
import { UploaderError } from './errors.js';

/** Largest `max_batch_size` accepted. */
export const MAX_BATCH_SIZE_LIMIT = 4096;

/**
 * Checks a requested `max_batch_size`.
 * @throws UploaderError `invalid_request` unless it is an integer from 0 to {@link MAX_BATCH_SIZE_LIMIT}.
 */
export function validateMaxBatchSize(maxBatchSize: number): number {
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 0 || maxBatchSize > MAX_BATCH_SIZE_LIMIT) {
    throw new UploaderError(
      'invalid_request',
      `max_batch_size must be an integer from 0 to ${MAX_BATCH_SIZE_LIMIT}`,
    );
  }
  return maxBatchSize;
}

function tensorConfig(kind: 'input' | 'output', t: OnnxTensorSignature, maxBatchSize: number): TensorConfig {
  try {
    // Type and batch-dimension rule shared with the model server's config-vs-graph check.
    const dataType = onnxTypeToTriton(t.elemType);
    return tensorConfigFromGraph(kind, { name: t.name, dataType, dims: t.dims }, maxBatchSize);
  } catch (err) {
    if (err instanceof ModelConfigError) {
      const message = err.message.startsWith(`${kind} '`)
        ? err.message
        : `${kind} '${t.name}': ${err.message}`;
      throw new UploaderError('invalid_onnx', message);
    }
    throw err;
  }
}

/**
 * The Triton config for an ONNX graph: platform `onnxruntime_onnx`, the graph's real inputs and
 * outputs with their types, and `maxBatchSize` from the request. With `maxBatchSize > 0` the leading
 * (batch) dimension is dropped from dims, as Triton expects; variable dimensions are -1.
 * @throws UploaderError `invalid_onnx` when the graph cannot be described that way.
 */
export function buildModelConfig(name: string, signature: OnnxSignature, maxBatchSize: number): ModelConfig {
  validateMaxBatchSize(maxBatchSize);
  if (signature.inputs.length === 0 || signature.outputs.length === 0) {
    throw new UploaderError('invalid_onnx', 'the graph declares no inputs or no outputs');
  }
  return {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize,
    input: signature.inputs.map((t) => tensorConfig('input', t, maxBatchSize)),
    output: signature.outputs.map((t) => tensorConfig('output', t, maxBatchSize)),
  };
}
