import {
  KServeProtocolError,
  tensorFromJson,
  tensorToJsonData,
  type InferRequest,
  type Tensor,
} from '@smart-routing/kserve';
import { z } from 'zod';
import { TaskError } from '../errors.js';
import type { InferTensor } from '../triton-client.js';
import { inferFailure } from './infer-failure.js';
import { parseWith, type TaskHandler } from './types.js';

const tensor = z.object({
  name: z.string().min(1),
  datatype: z.string().min(1),
  shape: z.array(z.number().int().min(0)),
  // Checked as an array only: z.array would copy and visit every element (150k for one image),
  // and tensorFromJson checks each value against the datatype anyway.
  data: z.custom<unknown[]>((v) => Array.isArray(v), { message: 'Expected array' }),
  parameters: z.record(z.string(), z.unknown()).optional(),
});

const schema = z.object({
  inputs: z.array(tensor).min(1, 'at least one input tensor is required').max(64),
  outputs: z
    .array(z.object({ name: z.string().min(1), parameters: z.record(z.string(), z.unknown()).optional() }))
    .max(64)
    .optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
});

/** `infer` result: the model's outputs as KServe v2 JSON tensors. */
export interface InferResult {
  outputs: InferTensor[];
}

/**
 * `infer`: KServe v2 JSON inputs, parsed once into typed tensors (before any load, so a tensor
 * whose data does not fit its shape or datatype never costs one), sent to the model server binary
 * (or over gRPC), outputs back typed and written as `{"outputs": [...]}` JSON. A 4xx from the model
 * server means the tensors did not fit the model: `bad_parameters` with the server's message.
 */
export const inferHandler: TaskHandler<InferRequest> = {
  taskType: 'infer',
  labelFree: false,
  parse(parameters) {
    const p = parseWith(schema, parameters, 'infer');
    try {
      const request: InferRequest = {
        inputs: p.inputs.map((t) => {
          const typed = tensorFromJson(t.name, t.datatype, t.shape, t.data);
          if (t.parameters) typed.parameters = t.parameters;
          return typed;
        }),
      };
      if (p.outputs) request.outputs = p.outputs;
      if (p.parameters) request.parameters = p.parameters;
      return request;
    } catch (err) {
      if (err instanceof KServeProtocolError) throw new TaskError('bad_parameters', `infer: ${err.message}`);
      throw err;
    }
  },
  async run(request, { client, label, deadlineUnixMs, signal }): Promise<InferResult> {
    if (!client) throw new TaskError('internal', 'infer needs a model server');
    try {
      const res = await client.inferTensors(label, request, { deadlineUnixMs, signal });
      return { outputs: res.outputs.map(jsonTensor) };
    } catch (err) {
      throw await inferFailure(err, client, label, 'infer');
    }
  },
};

/** A typed output as a KServe v2 JSON tensor (the one number[] conversion, for the JSON answer). */
function jsonTensor(t: Tensor): InferTensor {
  const out: InferTensor = { name: t.name, datatype: t.datatype, shape: t.shape, data: tensorToJsonData(t) };
  if (t.parameters) out.parameters = t.parameters;
  return out;
}
