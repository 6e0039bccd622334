/**
 * ModelInfer messages <-> the HTTP body the workers carry (Triton's binary layout), so one
 * `kserve_infer` task serves both fronts:
 *
 *   ModelInferRequest { inputs[i], raw_input_contents[i] }
 *     -> JSON header { inputs: [{..., parameters: {binary_data_size}}], parameters: {binary_data_output: true} }
 *        ++ raw_input_contents[0] ++ raw_input_contents[1] ...            (the bytes as they came)
 *   response body (header ++ binary outputs)
 *     -> ModelInferResponse { outputs[i], raw_output_contents[i] }        (views of the body)
 *
 * Typed `contents` are turned into raw bytes once; an output the model server sent as JSON `data`
 * likewise. Only JSON headers are parsed here, never tensor bytes.
 */
import {
  KServeProtocolError,
  rawOfTensor,
  tensorFromContents,
  tensorFromJson,
  type GrpcTensorContents,
} from '@smart-routing/kserve';

/** `InferParameter` as proto-loader gives it (`oneofs: true`). */
export interface GrpcParameter {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}

/** A parameters map of a gRPC message. */
export type GrpcParameters = Record<string, GrpcParameter>;

/** `ModelInferRequest` as proto-loader gives it (keepCase, longs as numbers, defaults). */
export interface GrpcInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: GrpcParameters;
  inputs: {
    name: string;
    datatype: string;
    shape: number[];
    parameters?: GrpcParameters;
    contents?: GrpcTensorContents;
  }[];
  outputs?: { name: string; parameters?: GrpcParameters }[];
  raw_input_contents?: Uint8Array[];
}

/** `ModelInferResponse` as sent. */
export interface GrpcInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: GrpcParameters;
  outputs: { name: string; datatype: string; shape: number[]; parameters: GrpcParameters }[];
  raw_output_contents: Uint8Array[];
}

/** The body of a converted request: the JSON header, then the tensors' bytes. */
export interface InferBody {
  body: Buffer;
  headerLength: number;
}

function plainParameters(p: GrpcParameters | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(p ?? {})) {
    const choice = v.parameter_choice as keyof GrpcParameter | undefined;
    if (choice) out[key] = v[choice];
  }
  return out;
}

function grpcParameters(p: unknown): GrpcParameters {
  const out: GrpcParameters = {};
  if (typeof p !== 'object' || p === null) return out;
  for (const [key, v] of Object.entries(p)) {
    if (typeof v === 'boolean') out[key] = { bool_param: v };
    else if (typeof v === 'string') out[key] = { string_param: v };
    else if (typeof v === 'number') out[key] = Number.isInteger(v) ? { int64_param: v } : { double_param: v };
  }
  return out;
}

/**
 * A ModelInfer request as the HTTP body of Triton's binary extension; every output is asked for
 * binary, so the answer converts back without parsing tensors.
 * @throws KServeProtocolError when raw contents do not match the inputs, or typed contents their shape.
 */
export function inferBodyOfGrpc(req: GrpcInferRequest): InferBody {
  const raw = req.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw new KServeProtocolError(
      `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; use it for all inputs or none`,
    );
  }
  if (req.inputs.length === 0) throw new KServeProtocolError('the request has no inputs');
  const parts: Uint8Array[] = req.inputs.map((t, i) =>
    raw.length > 0 ? raw[i]! : rawOfTensor(tensorFromContents(t.name, t.datatype, t.shape, t.contents)),
  );
  const header: Record<string, unknown> = {};
  if (req.id) header.id = req.id;
  header.inputs = req.inputs.map((t, i) => ({
    name: t.name,
    shape: t.shape,
    datatype: t.datatype,
    parameters: { ...plainParameters(t.parameters), binary_data_size: parts[i]!.byteLength },
  }));
  if (req.outputs && req.outputs.length > 0) {
    header.outputs = req.outputs.map((o) => ({
      name: o.name,
      parameters: { ...plainParameters(o.parameters), binary_data: true },
    }));
  }
  header.parameters = { ...plainParameters(req.parameters), binary_data_output: true };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}

interface OutputHeader {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  data?: unknown;
}

/**
 * A model server's infer response body (JSON header of `headerLength` bytes, 0 = all JSON, then
 * the binary outputs) as a ModelInferResponse; binary outputs become views of `body`.
 * @throws KServeProtocolError when the body does not follow the protocol.
 */
export function grpcResponseOfBody(body: Uint8Array, headerLength: number): GrpcInferResponse {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const end = headerLength > 0 ? headerLength : buf.length;
  let head: {
    model_name?: unknown;
    model_version?: unknown;
    id?: unknown;
    parameters?: unknown;
    outputs?: unknown;
  };
  try {
    head = JSON.parse(buf.toString('utf8', 0, end)) as typeof head;
  } catch (err) {
    throw new KServeProtocolError(`the model server's response is not JSON: ${(err as Error).message}`);
  }
  if (typeof head !== 'object' || head === null || !Array.isArray(head.outputs)) {
    throw new KServeProtocolError("the model server's response has no 'outputs' array");
  }
  let at = end;
  const outputs: GrpcInferResponse['outputs'] = [];
  const rawOut: Uint8Array[] = [];
  for (const o of head.outputs as OutputHeader[]) {
    if (typeof o?.name !== 'string' || typeof o.datatype !== 'string' || !Array.isArray(o.shape)) {
      throw new KServeProtocolError("an output of the model server's response lacks name, datatype or shape");
    }
    const { binary_data_size: size, ...rest } = o.parameters ?? {};
    if (typeof size === 'number') {
      if (!Number.isSafeInteger(size) || size < 0 || at + size > buf.length) {
        throw new KServeProtocolError(
          `output '${o.name}': binary_data_size ${String(size)} runs past the body`,
        );
      }
      rawOut.push(buf.subarray(at, at + size));
      at += size;
    } else {
      rawOut.push(rawOfTensor(tensorFromJson(o.name, o.datatype, o.shape, o.data, { kind: 'output' })));
    }
    outputs.push({ name: o.name, datatype: o.datatype, shape: o.shape, parameters: grpcParameters(rest) });
  }
  return {
    model_name: typeof head.model_name === 'string' ? head.model_name : '',
    model_version: typeof head.model_version === 'string' ? head.model_version : '',
    id: typeof head.id === 'string' ? head.id : '',
    parameters: grpcParameters(head.parameters),
    outputs,
    raw_output_contents: rawOut,
  };
}
