import { errorMessage, modelServerFailure, TaskError } from '../errors.js';
import type { ModelMetadata } from '../triton-client.js';
import type { TaskHandler } from './types.js';

/**
 * `kserve_metadata` (label = model name): the model server's `GET /v2/models/{model}` JSON, for a
 * dispatcher that cannot answer KServe v2 metadata from the repository itself.
 */
export const kserveMetadataHandler: TaskHandler<null> = {
  taskType: 'kserve_metadata',
  labelFree: false,
  parse(parameters) {
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
      throw new TaskError('bad_parameters', 'kserve_metadata: parameters_json must be a JSON object ("{}")');
    return null;
  },
  async run(_parameters, { client, label }): Promise<ModelMetadata> {
    if (!client) throw new TaskError('internal', 'kserve_metadata needs a model server');
    try {
      return await client.modelMetadata(label);
    } catch (err) {
      throw modelServerFailure(
        err,
        'inference_failed',
        `reading ${label}'s metadata failed: ${errorMessage(err)}`,
      );
    }
  },
};
