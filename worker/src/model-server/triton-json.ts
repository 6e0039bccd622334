import { MODEL_FILE } from '@smart-routing/model-repo';
import type { LoadedModel, TensorSpec } from './model-store.js';

/** Triton's JSON answers about a loaded model, in the field order and defaults Triton prints. */

/** Model metadata (`GET /v2/models/{m}`): KServe datatypes, shapes with the -1 batch dimension. */
export function modelMetadataJson(m: LoadedModel): object {
  const tensors = (specs: Map<string, TensorSpec>): object[] =>
    [...specs.values()].map((s) => ({ name: s.config.name, datatype: s.datatype, shape: s.shape }));
  return {
    name: m.name,
    versions: [String(m.version)],
    platform: m.config.platform ?? 'onnxruntime_onnx',
    inputs: tensors(m.inputs),
    outputs: tensors(m.outputs),
  };
}

/** The model configuration in Triton's JSON form (`GET /v2/models/{m}/config`). */
export function modelConfigJson(m: LoadedModel): object {
  const c = m.config;
  return {
    name: m.name,
    platform: c.platform ?? 'onnxruntime_onnx',
    backend: c.backend ?? 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: c.maxBatchSize,
    input: c.input.map((t) => ({
      name: t.name,
      data_type: t.dataType,
      format: 'FORMAT_NONE',
      dims: t.dims,
      is_shape_tensor: false,
      allow_ragged_batch: false,
      optional: false,
    })),
    output: c.output.map((t) => ({
      name: t.name,
      data_type: t.dataType,
      dims: t.dims,
      label_filename: '',
      is_shape_tensor: false,
    })),
    batch_input: [],
    batch_output: [],
    instance_group: [{ name: `${m.name}_0`, kind: 'KIND_CPU', count: 1, gpus: [] }],
    default_model_filename: MODEL_FILE,
    parameters: {},
  };
}
