import { KServeProtocolError } from '@smart-routing/kserve';
import { errorMessage, modelServerFailure, TaskError } from '../errors.js';
import { TritonError, type TritonClient } from '../triton-client.js';

/**
 * The TaskError for a failed inference (`infer`, `kserve_infer`): a 4xx from the model server
 * means the tensors did not fit the model (`bad_parameters` with the server's own message), unless
 * the model itself is gone (server restarted); unreachable -> `model_server_unavailable`; anything
 * else -> `inference_failed`.
 */
export async function inferFailure(
  err: unknown,
  client: TritonClient,
  label: string,
  taskType: string,
): Promise<TaskError> {
  if (err instanceof TaskError) return err;
  // A request the worker could not even encode is the producer's too.
  if (err instanceof KServeProtocolError)
    return new TaskError('bad_parameters', `${taskType}: ${err.message}`);
  if (err instanceof TritonError && err.status >= 400 && err.status < 500 && (await isReady(client, label)))
    return new TaskError('bad_parameters', `${taskType}: ${err.serverMessage}`, { cause: err });
  return modelServerFailure(err, 'inference_failed', `${taskType} on ${label} failed: ${errorMessage(err)}`);
}

async function isReady(client: TritonClient, label: string): Promise<boolean> {
  try {
    return await client.isModelReady(label);
  } catch {
    return false;
  }
}
