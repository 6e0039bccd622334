import { describe, expect, it } from 'vitest';
import {
  ModelConfigError,
  formatModelConfig,
  onnxTypeToTriton,
  parseModelConfig,
  tritonTypeToKserve,
  type ModelConfig,
} from '../src/index.js';

const tritonStyle = `
# A config as Triton's docs write it.
name: "text_encoder"
platform: "onnxruntime_onnx"
max_batch_size: 8 # batching on
input [
  {
    name: "input_ids"
    data_type: TYPE_INT64
    dims: [ -1 ]
  },
  {
    name: "attention_mask"
    data_type: TYPE_INT64
    dims: [ -1 ]
  }
]
output [
  {
    name: "last_hidden_state"
    data_type: TYPE_FP32
    dims: [ -1, 384 ]
  }
]
instance_group [ { count: 1, kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
`;

describe('parseModelConfig', () => {
  it('reads the list form and dynamic_batching, and ignores other fields', () => {
    expect(parseModelConfig(tritonStyle)).toEqual({
      name: 'text_encoder',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 8,
      input: [
        { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 384] }],
      dynamicBatching: { preferredBatchSize: [], maxQueueDelayMicroseconds: 100 },
    });
  });

  it("reads dynamic_batching's preferred sizes (list or repeated), defaults the delay to 0, rejects bad values", () => {
    expect(parseModelConfig('dynamic_batching { preferred_batch_size: [ 4, 8 ] }').dynamicBatching).toEqual({
      preferredBatchSize: [4, 8],
      maxQueueDelayMicroseconds: 0,
    });
    expect(
      parseModelConfig(
        'dynamic_batching { preferred_batch_size: 2 preferred_batch_size: 4 max_queue_delay_microseconds: 500 }',
      ).dynamicBatching,
    ).toEqual({ preferredBatchSize: [2, 4], maxQueueDelayMicroseconds: 500 });
    expect(parseModelConfig('dynamic_batching { }').dynamicBatching).toEqual({
      preferredBatchSize: [],
      maxQueueDelayMicroseconds: 0,
    });
    expect(parseModelConfig('max_batch_size: 4').dynamicBatching).toBeUndefined();
    expect(() => parseModelConfig('dynamic_batching { preferred_batch_size: 0 }')).toThrow(
      /line 1: preferred_batch_size must be >= 1/,
    );
    expect(() => parseModelConfig('dynamic_batching: 3')).toThrow(/'dynamic_batching' must be a message/);
  });

  it('reads repeated blocks, repeated dims, backend, angle brackets and separators', () => {
    const text = `name: 'm'; backend: "onnxruntime"
      input { name: "x" data_type: TYPE_FP32 dims: 2 dims: 3 reshape { shape: [6] } }
      input: < name: "y", data_type: TYPE_BOOL, dims: [] >
      output { name: "z" data_type: TYPE_FP32 dims: [2,3] optional: false }
      parameters { key: "a" value: { string_value: "b" } }
      version_policy: { latest { num_versions: 1 } }`;
    expect(parseModelConfig(text)).toEqual({
      name: 'm',
      backend: 'onnxruntime',
      maxBatchSize: 0,
      input: [
        { name: 'x', dataType: 'TYPE_FP32', dims: [2, 3] },
        { name: 'y', dataType: 'TYPE_BOOL', dims: [] },
      ],
      output: [{ name: 'z', dataType: 'TYPE_FP32', dims: [2, 3] }],
    });
  });

  it('gives an empty name when the file has none (Triton uses the folder name)', () => {
    expect(parseModelConfig('max_batch_size: 1').name).toBe('');
  });

  it.each([
    ['name: "a"\ninput [ { name: "x" dims: [1] } ]', /line 2: input 'x' has no data_type/],
    [
      'name: "a"\n\ninput { name: "x" data_type: TYPE_NOPE dims: 1 }',
      /line 3: .*unknown data_type 'TYPE_NOPE'/,
    ],
    ['name: "a"\nmax_batch_size: "8"', /line 2: 'max_batch_size' must be an integer/],
    ['name: "a"\ninput {\n name: "x"\n', /line 2: '\{' is never closed/],
    ['name: "a"\n  name "b"', /line 2: expected ':' or '\{' after 'name'/],
    ['name: "a\n"', /line 1: unterminated string/],
    ['name: "a"\n@', /line 2: unexpected character '@'/],
    ['input [ { name: "x" data_type: TYPE_FP32 dims: [1 2] } ]', /line 1: expected ',' or '\]'/],
    ['name: "a"\nmax_batch_size: -1', /line 2: max_batch_size must be >= 0/],
    ['name: { }', /line 1: 'name' must be a string, got a message/],
    ['input: "x"', /line 1: 'input' must be a message/],
    ['name:', /unexpected end of file|has no value/],
  ])('rejects %j', (text, message) => {
    expect(() => parseModelConfig(text)).toThrow(ModelConfigError);
    expect(() => parseModelConfig(text)).toThrow(message);
  });
});

describe('formatModelConfig', () => {
  it('round-trips through parseModelConfig', () => {
    const config: ModelConfig = {
      name: 'label-1',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 8,
      input: [
        { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 32] }],
    };
    const text = formatModelConfig(config);
    expect(text).toContain('platform: "onnxruntime_onnx"');
    expect(text).toContain('data_type: TYPE_INT64');
    expect(text).not.toContain('dynamic_batching');
    expect(parseModelConfig(text)).toEqual(config);
    const batched = {
      ...config,
      dynamicBatching: { preferredBatchSize: [4, 8], maxQueueDelayMicroseconds: 200 },
    };
    expect(formatModelConfig(batched)).toContain(
      'dynamic_batching {\n  preferred_batch_size: [ 4, 8 ]\n  max_queue_delay_microseconds: 200\n}',
    );
    expect(parseModelConfig(formatModelConfig(batched))).toEqual(batched);
  });

  it('escapes names and rejects unknown data types', () => {
    const config: ModelConfig = { name: 'a "quoted" \\ name', maxBatchSize: 0, input: [], output: [] };
    expect(parseModelConfig(formatModelConfig(config))).toEqual(config);
    expect(() =>
      formatModelConfig({ ...config, input: [{ name: 'x', dataType: 'FP32', dims: [] }] }),
    ).toThrow(/unknown Triton data type 'FP32'/);
  });
});

describe('onnxTypeToTriton', () => {
  it('maps ONNX element types', () => {
    expect(onnxTypeToTriton(1)).toBe('TYPE_FP32');
    expect(onnxTypeToTriton(7)).toBe('TYPE_INT64');
    expect(onnxTypeToTriton(9)).toBe('TYPE_BOOL');
    expect(onnxTypeToTriton(8)).toBe('TYPE_STRING');
    expect(() => onnxTypeToTriton(0)).toThrow(ModelConfigError);
  });
});

describe('tritonTypeToKserve', () => {
  it('strips TYPE_ and names strings BYTES', () => {
    expect(tritonTypeToKserve('TYPE_FP32')).toBe('FP32');
    expect(tritonTypeToKserve('TYPE_INT64')).toBe('INT64');
    expect(tritonTypeToKserve('TYPE_STRING')).toBe('BYTES');
    expect(() => tritonTypeToKserve('FP32')).toThrow(/unknown Triton data type/);
  });
});
