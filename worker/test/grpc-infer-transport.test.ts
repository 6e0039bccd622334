import { createServer } from 'node:net';
import { decodeInferRequest, decodeInferResponse, rawOfTensor } from '@smart-routing/kserve';
import { describe, expect, it } from 'vitest';
import {
  fromModelInferResponse,
  GrpcInferTransport,
  responseBody,
  toModelInferRequest,
} from '../src/grpc-infer-transport.js';
import { ModelServerUnreachableError } from '../src/triton-client.js';
import { tritonclientVector as vector } from '../../kserve/test/fixtures/tritonclient-vectors.js';

/**
 * The HTTP body <-> ModelInfer conversion of the gRPC transport, fed with bodies written by
 * NVIDIA's Triton Python client (tritonclient.http generate_request_body / the binary data
 * extension document's example), from kserve/test/fixtures/tritonclient-vectors.json (the JSON
 * names the client commit). The round trip against a real server is in infer-protocols.test.ts.
 */

describe('toModelInferRequest', () => {
  it("puts tritonclient's binary tensors into raw_input_contents byte for byte", () => {
    const { body, headerLength } = vector('docs-example-request');
    const req = toModelInferRequest('mymodel', decodeInferRequest(body, { headerLength }));
    expect(req.model_name).toBe('mymodel');
    expect(req.inputs).toEqual([
      { name: 'input0', datatype: 'UINT32', shape: [2, 2], parameters: {} },
      { name: 'input1', datatype: 'BOOL', shape: [3], parameters: {} },
    ]);
    // The bytes after the JSON header are input0's 16 bytes, then input1's 3.
    const tail = body.subarray(headerLength);
    expect(req.raw_input_contents.map((b) => b.toString('hex'))).toEqual([
      tail.subarray(0, 16).toString('hex'),
      tail.subarray(16).toString('hex'),
    ]);
    // binary_data is the HTTP extension's business: gRPC answers raw contents anyway.
    expect(req.outputs).toEqual([
      { name: 'output0', parameters: {} },
      { name: 'output1', parameters: {} },
    ]);
  });

  it('turns JSON data into raw little-endian bytes, keeps the id and BYTES layout', () => {
    const { body, headerLength } = vector('bytes-and-json-request');
    const req = toModelInferRequest('m', decodeInferRequest(body, { headerLength }));
    expect(req.id).toBe('42');
    expect(req.parameters).toEqual({});
    expect(req.raw_input_contents[0]!.toString('hex')).toBe(body.subarray(headerLength).toString('hex'));
    expect(Array.from(new Float32Array(new Uint8Array(req.raw_input_contents[1]!).buffer))).toEqual([
      0.5, -2.25,
    ]);
  });

  it('carries plain parameters as InferParameter and refuses the rest', () => {
    const req = toModelInferRequest('m', {
      inputs: [],
      parameters: { priority: 2, timeout: 1.5, tag: 'x', sequence_start: true },
    });
    expect(req.parameters).toEqual({
      priority: { int64_param: 2 },
      timeout: { double_param: 1.5 },
      tag: { string_param: 'x' },
      sequence_start: { bool_param: true },
    });
    expect(() => toModelInferRequest('m', { inputs: [], parameters: { nested: { a: 1 } } })).toThrow(
      "request parameter 'nested' must be a boolean, a number or a string to travel over gRPC",
    );
  });
});

describe('responseBody', () => {
  it('writes a ModelInferResponse as the docs example response tritonclient parses, byte for byte', () => {
    const { body, headerLength } = vector('docs-example-response');
    const decoded = decodeInferResponse(body, headerLength);
    const grpcResponse = {
      model_name: 'mymodel',
      model_version: '1',
      id: '',
      parameters: {},
      outputs: decoded.outputs.map((t) => ({
        name: t.name,
        datatype: t.datatype,
        shape: t.shape,
        parameters: {},
      })),
      raw_output_contents: decoded.outputs.map(rawOfTensor),
    };
    const request = {
      inputs: [],
      parameters: { binary_data_output: true },
      outputs: [{ name: 'output1', parameters: { binary_data: false } }],
    };
    const out = responseBody(request, fromModelInferResponse(grpcResponse));
    expect(out.headerLength).toBe(headerLength);
    expect(Buffer.from(out.body).toString('hex')).toBe(body.toString('hex'));
  });

  it('answers all JSON (header length 0) when the request asked for no binary output', () => {
    const out = responseBody(
      { inputs: [] },
      fromModelInferResponse({
        model_name: 'm',
        model_version: '3',
        id: 'r1',
        outputs: [{ name: 'y', datatype: 'INT32', shape: [2] }],
        raw_output_contents: [Buffer.from(new Int32Array([7, -1]).buffer)],
      }),
    );
    expect(out.headerLength).toBe(0);
    expect(JSON.parse(Buffer.from(out.body).toString('utf8'))).toEqual({
      model_name: 'm',
      model_version: '3',
      id: 'r1',
      outputs: [{ name: 'y', datatype: 'INT32', shape: [2], data: [7, -1] }],
    });
  });

  it('refuses raw contents that do not match the outputs', () => {
    expect(() =>
      fromModelInferResponse({
        model_name: 'm',
        model_version: '',
        id: '',
        outputs: [{ name: 'y', datatype: 'FP32', shape: [2] }],
        raw_output_contents: [Buffer.alloc(4)],
      }),
    ).toThrow(/unexpected binary_data_size 4/);
  });
});

describe('GrpcInferTransport', () => {
  it('rejects an address that is not host:port at once', () => {
    expect(() => new GrpcInferTransport({ address: 'http://triton:8001' })).toThrow(/host:port/);
  });

  it('reports a server that is not there as unreachable', async () => {
    // A port that was free a moment ago: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const transport = new GrpcInferTransport({ address: `127.0.0.1:${port}`, inferTimeoutMs: 20_000 });
    try {
      const err = await transport
        .inferTensors('m', {
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: new Float32Array(1) }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelServerUnreachableError);
    } finally {
      transport.close();
      transport.close();
    }
  });
});
