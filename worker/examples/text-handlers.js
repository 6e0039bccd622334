// @ts-check
// An example WORKER_HANDLERS module: two task types for the TypeScript worker, written as plain
// JavaScript with the worker's own types (checked by `tsc --checkJs` through the JSDoc below).
//
//   WORKER_HANDLERS=./worker/examples/text-handlers.js npx smart-routing-worker
//
// A handler is the same object the built-in ones are (`TaskHandler` in @smart-routing/worker):
// `parse` validates parameters_json before any label is loaded, `run` does the work, and a
// `TaskError` with a worker code (`bad_parameters`, ...) reaches the producer as that error.
// Both handlers here run without a model (labelFree), so they work with TRITON_URL=none too; a
// label-bound one would use `context.client` (the model server) and `context.models`.
import { TaskError } from '@smart-routing/worker';

/** @param {unknown} parameters @param {string} taskType @returns {{ text: string }} */
function needText(parameters, taskType) {
  const text = /** @type {{ text?: unknown } | null} */ (parameters)?.text;
  if (typeof text !== 'string') throw new TaskError('bad_parameters', `${taskType}: text: expected a string`);
  return { text };
}

/** @type {import('@smart-routing/worker').TaskHandler<{ text: string }>} */
export const wordCount = {
  taskType: 'word_count',
  labelFree: true,
  parse: (parameters) => needText(parameters, 'word_count'),
  async run({ text }, context) {
    const words = text.split(/\s+/).filter((w) => w.length > 0).length;
    return { words, characters: [...text].length, task_id: context.taskId };
  },
};

/** @type {import('@smart-routing/worker').TaskHandler<{ text: string }>} */
export const reverseText = {
  taskType: 'reverse_text',
  labelFree: true,
  parse: (parameters) => needText(parameters, 'reverse_text'),
  async run({ text }) {
    return { text: [...text].reverse().join('') };
  },
};

/** What the worker loads: every handler this module offers. */
export const handlers = [wordCount, reverseText];
