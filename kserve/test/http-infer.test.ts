import { describe, expect, it } from 'vitest';
import {
  KServeProtocolError,
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  halfToNumber,
  parseHeaderLength,
  wantsBinaryOutput,
  type InferRequest,
  type Tensor,
} from '../src/index.js';
import {
  tritonclientFixture as fixture,
  tritonclientVector as vector,
} from './fixtures/tritonclient-vectors.js';

// Bodies written by NVIDIA's Triton Python client (fixtures/tritonclient-vectors.ts); the first and
// last follow the example of Triton's binary data extension document.
const concat = (chunks: Buffer[]): Buffer => Buffer.concat(chunks);

const docsRequest: InferRequest = {
  inputs: [
    { name: 'input0', datatype: 'UINT32', shape: [2, 2], data: Uint32Array.from([0, 1, 2, 3]) },
    { name: 'input1', datatype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
  ],
  outputs: [
    { name: 'output0', parameters: { binary_data: true } },
    { name: 'output1', parameters: { binary_data: false } },
  ],
};

describe('decodeInferRequest', () => {
  it("reads tritonclient's binary request of the docs example into typed arrays", () => {
    expect(fixture.commit).toMatch(/^[0-9a-f]{40}$/);
    const { body, headerLength } = vector('docs-example-request');
    expect(decodeInferRequest(body, { headerLength: String(headerLength) })).toEqual(docsRequest);
  });

  it('reads BYTES binary next to JSON data, and request parameters', () => {
    const { body, headerLength } = vector('bytes-and-json-request');
    const req = decodeInferRequest(body, { headerLength });
    expect(req.id).toBe('42');
    expect(req.parameters).toEqual({ binary_data_output: true });
    const [text, scale] = req.inputs;
    expect(text!.shape).toEqual([1, 3]);
    expect((text!.data as Buffer[]).map((b) => b.toString('utf8'))).toEqual(['hello', '', 'été']);
    expect(scale!.data).toEqual(Float32Array.from([0.5, -2.25]));
    expect(wantsBinaryOutput(req, 'anything')).toBe(true);
  });

  it('reads a JSON-only body (no header length)', () => {
    const { body, headerLength } = vector('json-only-request');
    expect(headerLength).toBeUndefined();
    const req = decodeInferRequest(body);
    expect(req.inputs[0]!.data).toEqual(BigInt64Array.from([101n, 7n, 102n]));
    expect(wantsBinaryOutput(req, 'last_hidden_state')).toBe(false);
  });

  it('copies tensor data into memory of its own, aligned whatever the header length', () => {
    const { body, headerLength } = vector('docs-example-request');
    const t = decodeInferRequest(body, { headerLength }).inputs[0]!;
    expect((t.data as Uint32Array).buffer).not.toBe(body.buffer);
    expect((t.data as Uint32Array).byteOffset).toBe(0);
  });

  it.each<[string, () => unknown, RegExp]>([
    [
      'a header length past the body',
      () => decodeInferRequest(Buffer.from('{}'), { headerLength: '3' }),
      /must be an integer from 0 to the body length \(2\)/,
    ],
    [
      'a header length that is not a number',
      () => decodeInferRequest(Buffer.from('{}'), { headerLength: 'x' }),
      /got 'x'/,
    ],
    [
      'bytes no input accounts for',
      () => {
        const { body, headerLength } = vector('docs-example-request');
        return decodeInferRequest(Buffer.concat([body, Buffer.from([9])]), { headerLength });
      },
      /1 bytes of binary data that no input's binary_data_size accounts for/,
    ],
    [
      'a body cut short',
      () => {
        const { body, headerLength } = vector('docs-example-request');
        return decodeInferRequest(body.subarray(0, body.length - 1), { headerLength });
      },
      /input 'input1': binary_data_size 3 runs past the end of the body \(2 bytes left\)/,
    ],
    [
      'binary_data_size without the header',
      () => {
        const { body, headerLength } = vector('docs-example-request');
        return decodeInferRequest(body.subarray(0, headerLength));
      },
      /has 'binary_data_size' but the message has no Inference-Header-Content-Length header/,
    ],
    [
      'a size that does not fit the shape',
      () => {
        const json = Buffer.from(
          JSON.stringify({
            inputs: [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 4 } }],
          }),
        );
        return decodeInferRequest(Buffer.concat([json, Buffer.alloc(4)]), { headerLength: json.length });
      },
      /input 'x': unexpected binary_data_size 4, shape \[2\] of FP32 needs 8 bytes/,
    ],
    ['not JSON', () => decodeInferRequest(Buffer.from('{nope')), /failed to parse the request JSON buffer/],
    ['no inputs', () => decodeInferRequest(Buffer.from('{"inputs":[]}')), /non-empty 'inputs' array/],
    [
      'a non-string id',
      () => decodeInferRequest(Buffer.from('{"id":1,"inputs":[]}')),
      /'id' must be a string/,
    ],
  ])('refuses %s', (_what, fn, message) => {
    expect(fn).toThrow(KServeProtocolError);
    expect(fn).toThrow(message);
  });
});

describe('encodeInferRequest', () => {
  it('writes the same bytes as tritonclient for every request vector', () => {
    const docs = vector('docs-example-request');
    const a = encodeInferRequest(docsRequest);
    expect(a.headerLength).toBe(docs.headerLength);
    expect(concat(a.chunks).equals(docs.body)).toBe(true);
    expect(a.byteLength).toBe(docs.body.length);

    const mixed = vector('bytes-and-json-request');
    const req = decodeInferRequest(mixed.body, { headerLength: mixed.headerLength });
    const b = encodeInferRequest(req, { binaryInputs: (t) => t.datatype === 'BYTES' });
    expect(concat(b.chunks).toString('hex')).toBe(mixed.body.toString('hex'));
    expect(b.headerLength).toBe(mixed.headerLength);

    const json = vector('json-only-request');
    const c = encodeInferRequest(decodeInferRequest(json.body), { binaryInputs: false });
    expect(c.headerLength).toBeUndefined();
    expect(concat(c.chunks).toString('utf8')).toBe(json.body.toString('utf8'));
  });
});

const docsOutputs: Tensor[] = [
  {
    name: 'output0',
    datatype: 'FP16',
    shape: [3, 2],
    data: Uint16Array.from([0x3800, 0x3c00, 0x3e00, 0x4000, 0xbc00, 0]),
  },
  { name: 'output1', datatype: 'UINT32', shape: [2, 2], data: Uint32Array.from([0, 1, 2, 3]) },
  {
    name: 'output2',
    datatype: 'BYTES',
    shape: [3],
    data: [Buffer.from('ab'), Buffer.alloc(0), Buffer.from([0xff])],
  },
];

describe('encodeInferResponse', () => {
  it('writes the docs example response that tritonclient parses, byte for byte', () => {
    const { body, headerLength } = vector('docs-example-response');
    const out = encodeInferResponse(
      { model_name: 'mymodel', model_version: '1', outputs: docsOutputs },
      (name) => name !== 'output1',
    );
    expect(out.headerLength).toBe(headerLength);
    expect(concat(out.chunks).toString('hex')).toBe(body.toString('hex'));
  });

  it('is JSON only, with no header length, when no output is binary', () => {
    const out = encodeInferResponse(
      { model_name: 'm', model_version: '1', id: 'r', outputs: [docsOutputs[1]!] },
      () => false,
    );
    expect(out.headerLength).toBeUndefined();
    expect(JSON.parse(concat(out.chunks).toString('utf8'))).toEqual({
      model_name: 'm',
      model_version: '1',
      id: 'r',
      outputs: [{ name: 'output1', datatype: 'UINT32', shape: [2, 2], data: [0, 1, 2, 3] }],
    });
  });

  it('refuses a tensor whose data does not fit its shape', () => {
    const bad: Tensor = { name: 'y', datatype: 'FP32', shape: [3], data: new Float32Array(2) };
    expect(() => encodeInferResponse({ model_name: 'm', outputs: [bad] }, () => true)).toThrow(
      "tensor 'y': shape [3] needs 12 bytes of FP32, data has 8",
    );
  });
});

describe('decodeInferResponse', () => {
  it('reads the docs example response to what tritonclient decodes', () => {
    const { body, headerLength, v } = vector('docs-example-response');
    const res = decodeInferResponse(body, headerLength);
    expect(res.model_name).toBe('mymodel');
    const [o0, o1, o2] = res.outputs;
    expect(Array.from(o0!.data as Uint16Array, halfToNumber)).toEqual(
      (v.client_decoded!.output0 as number[][]).flat(),
    );
    expect(Array.from(o1!.data as Uint32Array)).toEqual((v.client_decoded!.output1 as number[][]).flat());
    expect((o2!.data as Buffer[]).map((b) => b.toString('hex'))).toEqual(v.client_decoded!.output2);
  });
});

describe('parseHeaderLength', () => {
  it('takes a decimal header within the body', () => {
    expect(parseHeaderLength(undefined, 5)).toBeUndefined();
    expect(parseHeaderLength('5', 5)).toBe(5);
    expect(parseHeaderLength(['2'], 5)).toBe(2);
    expect(() => parseHeaderLength('-1', 5)).toThrow(KServeProtocolError);
  });
});

describe('decodeInferRequest viewTensors', () => {
  it('views aligned binary tensors in place and copies misaligned ones', () => {
    const data = Float32Array.from([1.5, -2, 3.25, 4]);
    const msg = encodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [4], data }] });
    const headerLength = msg.headerLength!;
    for (const shift of [0, 1, 2, 3]) {
      // Place the binary part at an offset that is aligned only when shift makes it so.
      const pad = (8 - ((headerLength + shift) % 8)) % 8;
      const own = Buffer.from(new ArrayBuffer(pad + shift + msg.byteLength), pad + shift, msg.byteLength);
      Buffer.concat(msg.chunks).copy(own);
      const aligned = (own.byteOffset + headerLength) % 4 === 0;
      const x = decodeInferRequest(own, { headerLength, viewTensors: true }).inputs[0]!.data as Float32Array;
      expect(Array.from(x)).toEqual(Array.from(data));
      expect(x.buffer === own.buffer).toBe(aligned);
      // Without the option: always a copy.
      const copy = decodeInferRequest(own, { headerLength }).inputs[0]!.data as Float32Array;
      expect(copy.buffer).not.toBe(own.buffer);
    }
  });
});
