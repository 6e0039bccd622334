import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * Reads and writes ONNX `ModelProto` files with protobufjs from a subset of onnx.proto3
 * (`proto/onnx-subset.proto`). Enough to write the demo models and to read any exporter's
 * graph inputs and outputs.
 */

const root = protobuf.loadSync(fileURLToPath(new URL('../proto/onnx-subset.proto', import.meta.url)));
const modelType = root.lookupType('onnx.ModelProto');

/** ONNX `TensorProto.DataType` values we use. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** One dimension: a size, or a symbolic name (e.g. `batch_size`), or -1 when unknown. */
export type OnnxDim = number | string;

/** A graph input or output as a serving config needs it. */
export interface OnnxTensorSignature {
  name: string;
  /** ONNX `TensorProto.DataType` number (see `OnnxDataType`). */
  elemType: number;
  dims: OnnxDim[];
}

export interface OnnxSignature {
  irVersion: number;
  opsetVersion: number;
  /** Graph inputs that are not initializers (the ones a caller feeds). */
  inputs: OnnxTensorSignature[];
  outputs: OnnxTensorSignature[];
}

/** Plain-object form of the proto messages used by the writer (camelCase fields, as protobufjs). */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  i?: number;
  f?: number;
  ints?: number[];
  floats?: number[];
  s?: Uint8Array;
}

export interface OnnxNode {
  opType: string;
  input: string[];
  output: string[];
  name?: string;
  attribute?: OnnxAttribute[];
}

export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxTensorSignature[];
  output: OnnxTensorSignature[];
}

/** ONNX `AttributeProto.AttributeType` values we use. */
export const OnnxAttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

function valueInfo(sig: OnnxTensorSignature): object {
  return {
    name: sig.name,
    type: {
      tensorType: {
        elemType: sig.elemType,
        shape: { dim: sig.dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** Builds a float32 initializer from values (little-endian raw data, as ONNX stores it). */
export function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTensor {
  return {
    name,
    dims,
    dataType: OnnxDataType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** Builds an int64 initializer. */
export function int64Tensor(name: string, dims: number[], values: BigInt64Array): OnnxTensor {
  return {
    name,
    dims,
    dataType: OnnxDataType.INT64,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** Encodes a model (opset 17, IR version 8 unless told otherwise) to ONNX protobuf bytes. */
export function encodeOnnxModel(
  graph: OnnxGraph,
  options: { opsetVersion?: number; irVersion?: number; producerName?: string } = {},
): Uint8Array {
  const model = modelType.fromObject({
    irVersion: options.irVersion ?? 8,
    producerName: options.producerName ?? 'smart-routing',
    opsetImport: [{ domain: '', version: options.opsetVersion ?? 17 }],
    graph: {
      name: graph.name,
      node: graph.node,
      initializer: graph.initializer,
      input: graph.input.map(valueInfo),
      output: graph.output.map(valueInfo),
    },
  });
  return modelType.encode(model).finish();
}

interface DecodedValueInfo {
  name: string;
  type?: { tensorType?: { elemType: number; shape?: { dim: { dimValue?: number; dimParam?: string }[] } } };
}

function toSignature(v: DecodedValueInfo): OnnxTensorSignature {
  const tt = v.type?.tensorType;
  return {
    name: v.name,
    elemType: tt?.elemType ?? 0,
    dims: (tt?.shape?.dim ?? []).map((d) =>
      d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== 0 ? d.dimValue : -1,
    ),
  };
}

/** Thrown when bytes are not an ONNX model. */
export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
}

/** Reads a model's IR/opset versions and its graph inputs and outputs. */
export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  let obj: {
    irVersion?: number;
    opsetImport?: { domain?: string; version?: number }[];
    graph?: { input?: DecodedValueInfo[]; output?: DecodedValueInfo[]; initializer?: { name: string }[] };
  };
  try {
    obj = modelType.toObject(modelType.decode(bytes), { longs: Number, oneofs: true, arrays: true });
  } catch (err) {
    throw new OnnxFormatError(`not an ONNX model: ${(err as Error).message}`);
  }
  if (!obj.graph || !obj.irVersion) throw new OnnxFormatError('not an ONNX model: no graph or IR version');
  const initializers = new Set((obj.graph.initializer ?? []).map((t) => t.name));
  const defaultOpset = (obj.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return {
    irVersion: obj.irVersion,
    opsetVersion: defaultOpset?.version ?? 0,
    inputs: (obj.graph.input ?? []).filter((v) => !initializers.has(v.name)).map(toSignature),
    outputs: (obj.graph.output ?? []).map(toSignature),
  };
}
