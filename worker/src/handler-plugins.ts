import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TaskHandler } from './handlers/types.js';

/** A handler module could not be loaded or exports no valid handler; the message names both. */
export class HandlerPluginError extends Error {
  override readonly name = 'HandlerPluginError';
}

/**
 * Loads the task handler modules of `WORKER_HANDLERS` (comma-separated). Each entry is a file path
 * (relative ones resolved against `cwd` [process.cwd()]) or a package name, imported as an ES
 * module; it exports its handlers, the same {@link TaskHandler} objects the built-in ones are, as
 * `export default handler`, `export default [handlers]` or `export const handlers = [...]`.
 * TypeScript handlers are compiled to JavaScript first (Node 20 runs no .ts). Throws
 * {@link HandlerPluginError} for a module that fails to load, exports no handler, or a handler
 * missing a field; duplicate task types are refused later, by `startWorker`.
 */
export async function loadHandlerPlugins(spec: string, cwd: string = process.cwd()): Promise<TaskHandler[]> {
  const entries = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const handlers: TaskHandler[] = [];
  for (const entry of entries) handlers.push(...(await loadModule(entry, cwd)));
  return handlers;
}

/** A path (./x, ../x, /x, or anything with a file extension) rather than a package name. */
function isPath(entry: string): boolean {
  return entry.startsWith('.') || isAbsolute(entry) || /\.[cm]?js$/.test(entry);
}

async function loadModule(entry: string, cwd: string): Promise<TaskHandler[]> {
  const target = isPath(entry) ? pathToFileURL(resolve(cwd, entry)).href : entry;
  let module: Record<string, unknown>;
  try {
    module = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    throw new HandlerPluginError(`WORKER_HANDLERS: cannot load ${entry}: ${(err as Error).message}`);
  }
  const exported = module.handlers ?? module.default;
  if (exported === undefined)
    throw new HandlerPluginError(
      `WORKER_HANDLERS: ${entry} exports no handlers (expected "export default" or "export const handlers")`,
    );
  const list = Array.isArray(exported) ? (exported as unknown[]) : [exported];
  if (list.length === 0)
    throw new HandlerPluginError(`WORKER_HANDLERS: ${entry} exports an empty handler list`);
  return list.map((h, i) => checkHandler(h, `${entry}[${i}]`));
}

/** The handler, once it has every field a TaskHandler needs. */
function checkHandler(value: unknown, where: string): TaskHandler {
  const h = value as Partial<TaskHandler> | null;
  const fault =
    typeof h !== 'object' || h === null
      ? 'is not an object'
      : typeof h.taskType !== 'string' || h.taskType.length === 0 || h.taskType.length > 100
        ? 'taskType must be a string of 1-100 characters'
        : typeof h.labelFree !== 'boolean'
          ? 'labelFree must be a boolean'
          : typeof h.parse !== 'function'
            ? 'parse must be a function'
            : typeof h.run !== 'function'
              ? 'run must be a function'
              : undefined;
  if (fault) throw new HandlerPluginError(`WORKER_HANDLERS: ${where}: ${fault}`);
  return h as TaskHandler;
}
