import { TaskError } from '../errors.js';
import { inferFailure } from './infer-failure.js';
import { binaryTaskResult, type BinaryTaskResult, type TaskHandler } from './types.js';

/**
 * `kserve_infer` (label = model name): the KServe v2 HTTP infer body the dispatcher received
 * (`RunTask.infer_request`, Triton's binary layout with `infer_header_length` bytes of JSON) goes
 * to the model server as it is (HTTP) or converted to ModelInferRequest (gRPC); the answer comes
 * back in that layout as `TaskResult.infer_response` + `infer_header_length`, never parsed here
 * over HTTP. Refusals as for `infer`: a 4xx is `bad_parameters` with the server's own message.
 */
export const kserveInferHandler: TaskHandler<null> = {
  taskType: 'kserve_infer',
  labelFree: false,
  parse(parameters) {
    // The tensors travel in infer_request; parameters_json is "{}".
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
      throw new TaskError('bad_parameters', 'kserve_infer: parameters_json must be a JSON object ("{}")');
    return null;
  },
  async run(_parameters, { client, label, inferRequest, deadlineUnixMs, signal }): Promise<BinaryTaskResult> {
    if (!client) throw new TaskError('internal', 'kserve_infer needs a model server');
    if (!inferRequest || inferRequest.body.byteLength === 0)
      throw new TaskError('bad_parameters', 'kserve_infer: the task carries no infer_request body');
    if (inferRequest.headerLength > inferRequest.body.byteLength)
      throw new TaskError(
        'bad_parameters',
        `kserve_infer: infer_header_length ${inferRequest.headerLength} is larger than the body (${inferRequest.body.byteLength} bytes)`,
      );
    try {
      const res = await client.inferBody(label, inferRequest, { deadlineUnixMs, signal });
      return binaryTaskResult(res.body, res.headerLength);
    } catch (err) {
      throw await inferFailure(err, client, label, 'kserve_infer');
    }
  },
};
