import type { TaskHandler } from './types.js';

/** `echo`: returns `{"echo": <parameters>}`. Label-free: no model is loaded or used. */
export const echoHandler: TaskHandler = {
  taskType: 'echo',
  labelFree: true,
  parse: (parameters) => parameters,
  run: async (parameters) => ({ echo: parameters }),
};
