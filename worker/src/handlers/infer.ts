import { z } from 'zod';
import { errorMessage, modelServerFailure, TaskError } from '../errors.js';
import { TritonError, type TritonClient } from '../triton-client.js';
import { parseWith, type TaskHandler } from './types.js';

const tensor = z.object({
  name: z.string().min(1),
  datatype: z.string().min(1),
  shape: z.array(z.number().int().min(0)),
  data: z.array(z.unknown()),
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

type InferParameters = z.infer<typeof schema>;

/**
 * `infer`: KServe v2 JSON inputs go to the model as they are; the model's outputs come back as
 * `{"outputs": [...]}`. A 4xx from the model server means the tensors did not fit the model:
 * `bad_parameters` with the server's message.
 */
export const inferHandler: TaskHandler<InferParameters> = {
  taskType: 'infer',
  labelFree: false,
  parse: (parameters) => parseWith(schema, parameters, 'infer'),
  async run(parameters, { client, label, signal }) {
    if (!client) throw new TaskError('internal', 'infer needs a model server');
    try {
      const res = await client.infer(label, parameters, signal);
      return { outputs: res.outputs };
    } catch (err) {
      // A 4xx means the tensors did not fit, unless the model itself is gone (server restarted).
      if (
        err instanceof TritonError &&
        err.status >= 400 &&
        err.status < 500 &&
        (await isReady(client, label))
      )
        throw new TaskError('bad_parameters', `infer: ${err.serverMessage}`);
      throw modelServerFailure(err, 'inference_failed', `infer on ${label} failed: ${errorMessage(err)}`);
    }
  },
};

async function isReady(client: TritonClient, label: string): Promise<boolean> {
  try {
    return await client.isModelReady(label);
  } catch {
    return false;
  }
}
