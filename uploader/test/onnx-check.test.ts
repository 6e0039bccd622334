import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkOnnxModel, InvalidOnnxError } from '../src/onnx-check.js';
import { buildEmbeddingFixture } from './fixtures.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onnx-check-test-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkOnnxModel', () => {
  it('loads a model in ONNX Runtime and returns its signature', async () => {
    const path = join(dir, 'model.onnx');
    await writeFile(path, buildEmbeddingFixture({ hiddenSize: 3 }).onnx);
    const result = await checkOnnxModel(path);
    expect(result.inputNames).toEqual(['input_ids', 'attention_mask']);
    expect(result.outputNames).toEqual(['last_hidden_state']);
    expect(result.signature.outputs[0]!.dims).toEqual(['batch_size', 'sequence_length', 3]);
  });

  it('rejects bytes ONNX Runtime cannot load with InvalidOnnxError', async () => {
    const fixture = buildEmbeddingFixture();
    // A well-formed protobuf whose graph uses an operator that does not exist.
    const bogusOp = Buffer.from(fixture.onnx).toString('latin1').replace('Gather', 'Gathex');
    const cases = { garbage: 'not onnx', empty: '', bogusOp: Buffer.from(bogusOp, 'latin1') };
    for (const [name, bytes] of Object.entries(cases)) {
      const path = join(dir, `${name}.onnx`);
      await writeFile(path, bytes);
      await expect(checkOnnxModel(path), name).rejects.toBeInstanceOf(InvalidOnnxError);
    }
  });

  it('rejects an unreadable path with a plain error, and honours abort', async () => {
    await expect(checkOnnxModel(join(dir, 'missing.onnx'))).rejects.not.toBeInstanceOf(InvalidOnnxError);
    const abort = new AbortController();
    abort.abort(new Error('stop'));
    await expect(checkOnnxModel(join(dir, 'x'), { signal: abort.signal })).rejects.toThrow('stop');
  });
});
