import { describe, expect, it } from 'vitest';
import {
  ModelConfigError,
  batchedShape,
  configDimsFromGraph,
  reconcileModelConfig,
  type GraphSignature,
  type ModelConfig,
} from '../src/index.js';

// The graph of a sentence-transformers ONNX export, as ONNX Runtime reports it.
const bert: GraphSignature = {
  inputs: [
    { name: 'input_ids', dataType: 'TYPE_INT64', dims: ['batch', 'seq'] },
    { name: 'attention_mask', dataType: 'TYPE_INT64', dims: ['batch', 'seq'] },
  ],
  outputs: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: ['batch', 'seq', 384] }],
};

const listed: ModelConfig = {
  name: 'm',
  maxBatchSize: 8,
  input: [
    { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
    { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
  ],
  output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 384] }],
};

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelConfigError);
    return (err as Error).message;
  }
  throw new Error('did not throw');
}

describe('batchedShape', () => {
  it('prefixes -1 only when the model batches', () => {
    expect(batchedShape(8, [3, 4])).toEqual([-1, 3, 4]);
    expect(batchedShape(0, [3, 4])).toEqual([3, 4]);
  });
});

describe('configDimsFromGraph', () => {
  it('turns symbolic and unknown sizes into -1 and drops a variable batch dimension', () => {
    expect(configDimsFromGraph('input', { name: 'x', dims: ['b', 0, -1, 7] }, 4)).toEqual([-1, -1, 7]);
    expect(configDimsFromGraph('input', { name: 'x', dims: [1, 3] }, 0)).toEqual([1, 3]);
  });
  it('refuses a fixed batch dimension and a batch-only tensor when batching', () => {
    expect(reason(() => configDimsFromGraph('input', { name: 'x', dims: [1, 3] }, 8))).toMatch(
      /input 'x' has a fixed batch dimension of 1/,
    );
    expect(reason(() => configDimsFromGraph('output', { name: 's', dims: ['b'] }, 8))).toMatch(
      /output 's' has shape \[b\]/,
    );
  });
});

describe('reconcileModelConfig', () => {
  it('accepts a config that lists the graph as it is, unchanged', () => {
    expect(reconcileModelConfig(listed, bert)).toEqual(listed);
  });

  it('fills in sides the config leaves empty (auto-complete), without changing the argument', () => {
    const bare: ModelConfig = { name: 'm', maxBatchSize: 8, input: [], output: [] };
    const done = reconcileModelConfig(bare, bert);
    expect(done.input).toEqual(listed.input);
    expect(done.output).toEqual(listed.output);
    expect(bare.input).toEqual([]);
    const flat = reconcileModelConfig({ ...bare, maxBatchSize: 0 }, bert);
    expect(flat.output).toEqual([{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, -1, 384] }]);
  });

  it('names what does not fit: unknown tensor, wrong type, wrong dims, missing input, no type', () => {
    const withInput = (i: ModelConfig['input'][number]): ModelConfig => ({
      ...listed,
      input: [i, listed.input[1]!],
    });
    expect(
      reason(() =>
        reconcileModelConfig(withInput({ name: 'token_ids', dataType: 'TYPE_INT64', dims: [-1] }), bert),
      ),
    ).toBe(
      "unexpected input 'token_ids' in the config, the model's inputs are ['input_ids', 'attention_mask']",
    );
    expect(
      reason(() =>
        reconcileModelConfig(withInput({ name: 'input_ids', dataType: 'TYPE_INT32', dims: [-1] }), bert),
      ),
    ).toBe("unexpected datatype TYPE_INT32 for input 'input_ids', the model expects TYPE_INT64");
    expect(
      reason(() =>
        reconcileModelConfig(
          { ...listed, output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 768] }] },
          bert,
        ),
      ),
    ).toBe(
      "output 'last_hidden_state' dims [-1,-1,768] (with batch) do not match the model's [batch,seq,384]",
    );
    expect(reason(() => reconcileModelConfig({ ...listed, input: [listed.input[0]!] }, bert))).toBe(
      "the config lists 1 inputs but the model has 2; missing ['attention_mask']",
    );
    const complex: GraphSignature = {
      ...bert,
      outputs: [{ name: 'z', typeLabel: 'complex64', dims: ['b', 2] }],
    };
    expect(reason(() => reconcileModelConfig({ ...listed, output: [] }, complex))).toBe(
      "output 'z' has unsupported type 'complex64'",
    );
  });
});
