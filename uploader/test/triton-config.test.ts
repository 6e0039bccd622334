import {
  formatModelConfig,
  OnnxDataType,
  parseModelConfig,
  type OnnxSignature,
} from '@smart-routing/model-repo';
import { describe, expect, it } from 'vitest';
import { UploaderError } from '../src/errors.js';
import { buildModelConfig, validateMaxBatchSize } from '../src/triton-config.js';

const bert: OnnxSignature = {
  irVersion: 8,
  opsetVersion: 14,
  inputs: [
    { name: 'input_ids', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
    { name: 'token_type_ids', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
  ],
  outputs: [
    { name: 'last_hidden_state', elemType: OnnxDataType.FLOAT, dims: ['batch_size', 'sequence_length', 384] },
  ],
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as UploaderError).code;
  }
  return undefined;
}

describe('buildModelConfig', () => {
  it('drops the batch dimension when max_batch_size > 0 and round-trips through config.pbtxt', () => {
    const config = buildModelConfig('m', bert, 8);
    expect(config).toEqual({
      name: 'm',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 8,
      input: [
        { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'token_type_ids', dataType: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 384] }],
    });
    expect(parseModelConfig(formatModelConfig(config))).toEqual(config);
  });

  it('keeps every dimension when max_batch_size is 0 (-1 for unknown sizes)', () => {
    const config = buildModelConfig(
      'm',
      { ...bert, outputs: [{ name: 'o', elemType: 1, dims: [-1, 0, 4] }] },
      0,
    );
    expect(config.input[0]!.dims).toEqual([-1, -1]);
    expect(config.output[0]!.dims).toEqual([-1, -1, 4]);
  });

  it('refuses a fixed batch dimension, a batch-only tensor and unknown types with invalid_onnx', () => {
    const fixed = { ...bert, inputs: [{ name: 'x', elemType: 1, dims: [1, 3] }] };
    expect(code(() => buildModelConfig('m', fixed, 8))).toBe('invalid_onnx');
    expect(buildModelConfig('m', fixed, 0).input[0]!.dims).toEqual([1, 3]);
    const rank1 = { ...bert, outputs: [{ name: 'score', elemType: 1, dims: ['batch'] }] };
    expect(code(() => buildModelConfig('m', rank1, 8))).toBe('invalid_onnx');
    const complex = { ...bert, inputs: [{ name: 'x', elemType: 14, dims: ['b', 2] }] };
    expect(code(() => buildModelConfig('m', complex, 8))).toBe('invalid_onnx');
    expect(code(() => buildModelConfig('m', { ...bert, outputs: [] }, 8))).toBe('invalid_onnx');
  });
});

describe('validateMaxBatchSize', () => {
  it('accepts 0..4096 integers only', () => {
    expect(validateMaxBatchSize(0)).toBe(0);
    expect(validateMaxBatchSize(4096)).toBe(4096);
    for (const n of [-1, 1.5, 4097, Number.NaN])
      expect(code(() => validateMaxBatchSize(n))).toBe('invalid_request');
  });
});
