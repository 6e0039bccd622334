import { echoHandler } from './echo.js';
import { embedTextsHandler } from './embed-texts.js';
import { inferHandler } from './infer.js';
import { kserveInferHandler } from './kserve-infer.js';
import { kserveMetadataHandler } from './kserve-metadata.js';
import type { TaskHandler } from './types.js';

/** Every handler the worker knows, by task type. */
export const ALL_HANDLERS: readonly TaskHandler[] = [
  embedTextsHandler,
  inferHandler,
  kserveInferHandler,
  kserveMetadataHandler,
  echoHandler,
];

/**
 * The handlers a worker serves, by task type: all of them with a model server, only label-free
 * ones (`echo`) without one (TRITON_URL=none).
 */
export function createHandlerRegistry(options: {
  withModelServer: boolean;
  handlers?: readonly TaskHandler[];
}): ReadonlyMap<string, TaskHandler> {
  const map = new Map<string, TaskHandler>();
  for (const h of options.handlers ?? ALL_HANDLERS) {
    if (map.has(h.taskType))
      throw new TypeError(`duplicate handler for task type ${JSON.stringify(h.taskType)}`);
    if (options.withModelServer || h.labelFree) map.set(h.taskType, h as TaskHandler);
  }
  return map;
}
