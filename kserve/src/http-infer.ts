import { rawOfTensor, tensorFromRaw } from './grpc-tensors.js';
import { KServeProtocolError } from './errors.js';
import { tensorFromJson, tensorToJsonData } from './json-tensor.js';
import { checkTensor, type Tensor } from './tensor.js';

/**
 * KServe v2 HTTP infer messages, JSON and with Triton's binary tensor data extension
 * (the binary tensor data extension document of the triton-inference-server/server repository; NVIDIA's tritonclient.http does the same):
 *
 *   body = JSON header (Inference-Header-Content-Length bytes) ++ tensor bytes ++ tensor bytes ...
 *
 * - Request: an input with `parameters.binary_data_size: n` has no `data`; its n bytes follow the
 *   header, in the order of the inputs that have them. Without the HTTP header the body is JSON only.
 * - Response: an output is binary when its requested output has `parameters.binary_data: true`, or
 *   else when the request has `parameters.binary_data_output: true`; it then carries
 *   `parameters.binary_data_size` instead of `data`, and the response has the
 *   `Inference-Header-Content-Length` header. Tensor bytes follow in the order of `outputs`.
 * - Bytes are little-endian, row-major, no padding; BOOL is 1 byte; BYTES elements are a 4-byte
 *   little-endian length and the bytes.
 */

/** The HTTP header that gives the JSON part's length in a binary body. */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'Inference-Header-Content-Length';

/** An output named in an infer request. */
export interface RequestedOutput {
  name: string;
  /** Tensor parameters as sent (incl. `binary_data`), passed through. */
  parameters?: Record<string, unknown>;
}

/** A KServe v2 infer request with typed tensors. */
export interface InferRequest {
  id?: string;
  /** Request parameters (incl. `binary_data_output`), passed through. */
  parameters?: Record<string, unknown>;
  inputs: Tensor[];
  /** Outputs asked for; undefined or empty means all. */
  outputs?: RequestedOutput[];
}

/** A KServe v2 infer response with typed tensors. */
export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs: Tensor[];
}

/** An encoded HTTP message: body parts to write in order, and the header value to send with them. */
export interface EncodedInferMessage {
  /** The JSON header first, then each binary tensor's bytes (views, not copies). */
  chunks: Buffer[];
  /** Total body length. */
  byteLength: number;
  /** `Inference-Header-Content-Length` value; undefined when the body is JSON only. */
  headerLength?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the `Inference-Header-Content-Length` value (a string header, or undefined).
 * @throws KServeProtocolError unless it is a non-negative integer no larger than the body.
 */
export function parseHeaderLength(
  value: string | string[] | undefined,
  bodyLength: number,
): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  const n = text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n > bodyLength) {
    throw new KServeProtocolError(
      `${INFERENCE_HEADER_CONTENT_LENGTH} must be an integer from 0 to the body length (${bodyLength}), got '${text}'`,
    );
  }
  return n;
}

function parseHeader(body: Uint8Array, headerLength: number | undefined): { json: unknown; rest: Buffer } {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const end = headerLength ?? buf.length;
  if (end === 0)
    throw new KServeProtocolError('failed to parse the request JSON buffer: the JSON header is empty');
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8', 0, end)) as unknown;
  } catch (err) {
    throw new KServeProtocolError(`failed to parse the request JSON buffer: ${(err as Error).message}`);
  }
  return { json, rest: buf.subarray(end) };
}

interface TensorParts {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  data: unknown;
  binarySize?: number;
}

function tensorParts(raw: unknown, kind: 'input' | 'output', i: number): TensorParts {
  const list = `${kind}s[${i}]`;
  if (!isObject(raw)) throw new KServeProtocolError(`${list} must be an object`);
  const { name, datatype, shape, data } = raw;
  if (typeof name !== 'string') throw new KServeProtocolError(`${list} has no 'name' string`);
  if (typeof datatype !== 'string')
    throw new KServeProtocolError(`${kind} '${name}' has no 'datatype' string`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new KServeProtocolError(`${kind} '${name}': 'shape' must be an array of non-negative integers`);
  }
  let parameters: Record<string, unknown> | undefined;
  let binarySize: number | undefined;
  if (raw.parameters !== undefined) {
    if (!isObject(raw.parameters))
      throw new KServeProtocolError(`${kind} '${name}': 'parameters' must be an object`);
    const { binary_data_size: size, ...rest } = raw.parameters;
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) {
        throw new KServeProtocolError(`${kind} '${name}': 'binary_data_size' must be a non-negative integer`);
      }
      binarySize = size as number;
    }
    if (Object.keys(rest).length > 0) parameters = rest;
  }
  const parts: TensorParts = { name, datatype, shape: shape as number[], data, binarySize };
  if (parameters) parts.parameters = parameters;
  return parts;
}

/** Reads the tensors of a request's `inputs` or a response's `outputs`, JSON or binary. */
function readTensors(
  list: unknown[],
  kind: 'input' | 'output',
  rest: Buffer,
  binary: boolean,
  model?: string,
  view = false,
): Tensor[] {
  let at = 0;
  const tensors = list.map((raw, i) => {
    const p = tensorParts(raw, kind, i);
    let t: Tensor;
    if (p.binarySize !== undefined) {
      if (!binary) {
        throw new KServeProtocolError(
          `${kind} '${p.name}' has 'binary_data_size' but the message has no ${INFERENCE_HEADER_CONTENT_LENGTH} header`,
        );
      }
      if (p.data !== undefined) {
        throw new KServeProtocolError(`${kind} '${p.name}' has both 'data' and 'binary_data_size'`);
      }
      if (at + p.binarySize > rest.length) {
        throw new KServeProtocolError(
          `${kind} '${p.name}': binary_data_size ${p.binarySize} runs past the end of the body (${rest.length - at} bytes left)`,
        );
      }
      t = tensorFromRaw(kind, p.name, p.datatype, p.shape, rest.subarray(at, at + p.binarySize), view);
      at += p.binarySize;
    } else {
      t = tensorFromJson(p.name, p.datatype, p.shape, p.data, { kind, model });
    }
    if (p.parameters) t.parameters = p.parameters;
    return t;
  });
  if (at !== rest.length) {
    throw new KServeProtocolError(
      `the body has ${rest.length - at} bytes of binary data that no ${kind}'s binary_data_size accounts for`,
    );
  }
  return tensors;
}

/** Options of `decodeInferRequest`. */
export interface DecodeInferRequestOptions {
  /** The `Inference-Header-Content-Length` header value (string or number). Default: none (JSON only). */
  headerLength?: number | string | string[];
  /** Model name, for messages in Triton's wording. Default: none. */
  model?: string;
  /**
   * Binary tensors as typed arrays over the body's own memory where aligned, instead of copies.
   * Only for a body whose ArrayBuffer is the caller's alone (not a pooled Buffer), since the
   * tensors may be transferred to another thread with it. Default false.
   */
  viewTensors?: boolean;
}

/**
 * Decodes an infer request body, JSON or binary. Tensor data is copied once into typed arrays that
 * own their memory (safe to transfer to another thread), or viewed in place with `viewTensors`.
 * @throws KServeProtocolError with a message naming what is wrong.
 */
export function decodeInferRequest(body: Uint8Array, options: DecodeInferRequestOptions = {}): InferRequest {
  const headerLength =
    typeof options.headerLength === 'number'
      ? parseHeaderLength(String(options.headerLength), body.byteLength)
      : parseHeaderLength(options.headerLength, body.byteLength);
  const { json, rest } = parseHeader(body, headerLength);
  if (!isObject(json)) throw new KServeProtocolError('the request body must be a JSON object');
  if (json.id !== undefined && typeof json.id !== 'string')
    throw new KServeProtocolError("'id' must be a string");
  if (json.parameters !== undefined && !isObject(json.parameters)) {
    throw new KServeProtocolError("'parameters' must be an object");
  }
  if (!Array.isArray(json.inputs) || json.inputs.length === 0) {
    throw new KServeProtocolError(
      "Unable to parse 'inputs': the request must have a non-empty 'inputs' array",
    );
  }
  const request: InferRequest = {
    inputs: readTensors(
      json.inputs,
      'input',
      rest,
      headerLength !== undefined,
      options.model,
      options.viewTensors,
    ),
  };
  if (typeof json.id === 'string') request.id = json.id;
  if (isObject(json.parameters)) request.parameters = json.parameters;
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw new KServeProtocolError("'outputs' must be an array");
    request.outputs = json.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string')
        throw new KServeProtocolError(`outputs[${i}] has no 'name' string`);
      if (o.parameters !== undefined && !isObject(o.parameters)) {
        throw new KServeProtocolError(`output '${o.name}': 'parameters' must be an object`);
      }
      const out: RequestedOutput = { name: o.name };
      if (isObject(o.parameters)) out.parameters = o.parameters;
      return out;
    });
  }
  return request;
}

/**
 * Whether output `name` is to be sent binary: its requested output's `binary_data`, else the
 * request's `binary_data_output`, else JSON.
 */
export function wantsBinaryOutput(
  request: Pick<InferRequest, 'parameters' | 'outputs'>,
  name: string,
): boolean {
  const own = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  if (typeof own === 'boolean') return own;
  return request.parameters?.binary_data_output === true;
}

function encodeMessage(
  head: Record<string, unknown>,
  listKey: 'inputs' | 'outputs',
  tensors: Tensor[],
  binary: (t: Tensor) => boolean,
  after: Record<string, unknown> = {},
): EncodedInferMessage {
  const chunks: Buffer[] = [];
  let binaryLength = 0;
  head[listKey] = tensors.map((t) => {
    checkTensor(t);
    // Key order as the other side writes it (tritonclient for requests, Triton for responses), so
    // equal messages are equal bytes.
    const entry: Record<string, unknown> =
      listKey === 'inputs'
        ? { name: t.name, shape: t.shape, datatype: t.datatype }
        : { name: t.name, datatype: t.datatype, shape: t.shape };
    if (binary(t)) {
      const bytes = rawOfTensor(t);
      chunks.push(bytes);
      binaryLength += bytes.length;
      entry.parameters = { ...t.parameters, binary_data_size: bytes.length };
    } else {
      if (t.parameters) entry.parameters = t.parameters;
      entry.data = tensorToJsonData(t);
    }
    return entry;
  });
  Object.assign(head, after);
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const message: EncodedInferMessage = { chunks: [json, ...chunks], byteLength: json.length + binaryLength };
  if (chunks.length > 0) message.headerLength = json.length;
  return message;
}

/** Options of `encodeInferRequest`. */
export interface EncodeInferRequestOptions {
  /** Send input data binary (Triton's extension) rather than as JSON `data`: all, none, or per tensor. Default true. */
  binaryInputs?: boolean | ((t: Tensor) => boolean);
}

/** Encodes an infer request (the client side), binary inputs by default. */
export function encodeInferRequest(
  request: InferRequest,
  options: EncodeInferRequestOptions = {},
): EncodedInferMessage {
  const head: Record<string, unknown> = {};
  if (request.id !== undefined) head.id = request.id;
  const choice = options.binaryInputs ?? true;
  const binary = typeof choice === 'function' ? choice : () => choice;
  const after: Record<string, unknown> = {};
  if (request.outputs) {
    after.outputs = request.outputs.map((o) =>
      o.parameters ? { name: o.name, parameters: o.parameters } : { name: o.name },
    );
  }
  if (request.parameters) after.parameters = request.parameters;
  return encodeMessage(head, 'inputs', request.inputs, binary, after);
}

/**
 * Encodes an infer response (the server side). `binary` says which outputs go binary (see
 * `wantsBinaryOutput`). Binary tensors are views of the tensors' memory, not copies.
 * @throws KServeProtocolError when a tensor's data does not fit its shape.
 */
export function encodeInferResponse(
  response: InferResponse,
  binary: (name: string) => boolean,
): EncodedInferMessage {
  const head: Record<string, unknown> = { model_name: response.model_name };
  if (response.model_version !== undefined) head.model_version = response.model_version;
  if (response.id !== undefined) head.id = response.id;
  if (response.parameters) head.parameters = response.parameters;
  return encodeMessage(head, 'outputs', response.outputs, (t) => binary(t.name));
}

/**
 * Decodes an infer response (the client side), JSON or binary.
 * @throws KServeProtocolError when the body breaks the protocol.
 */
export function decodeInferResponse(
  body: Uint8Array,
  headerLength?: number | string | string[],
): InferResponse {
  const hl = parseHeaderLength(
    typeof headerLength === 'number' ? String(headerLength) : headerLength,
    body.byteLength,
  );
  const { json, rest } = parseHeader(body, hl);
  if (!isObject(json)) throw new KServeProtocolError('the response body must be a JSON object');
  if (typeof json.model_name !== 'string')
    throw new KServeProtocolError("the response has no 'model_name' string");
  if (!Array.isArray(json.outputs)) throw new KServeProtocolError("the response has no 'outputs' array");
  const response: InferResponse = {
    model_name: json.model_name,
    outputs: readTensors(json.outputs, 'output', rest, hl !== undefined),
  };
  if (typeof json.model_version === 'string') response.model_version = json.model_version;
  if (typeof json.id === 'string') response.id = json.id;
  if (isObject(json.parameters)) response.parameters = json.parameters;
  return response;
}
