/**
 * Opens the task store that `TASK_STORE` names:
 *
 * | spec | store |
 * |---|---|
 * | `memory` | {@link MemoryTaskStore}: nothing survives the process |
 * | `sqlite:<path>` or a plain path | {@link SqliteTaskStore} on that file (default `./data/tasks.sqlite`) |
 * | `redis://…` / `rediss://…` | {@link RedisTaskStore} on that server |
 */
import { ConfigError } from '@smart-routing/service-kit';
import type { Logger } from 'pino';
import { MemoryTaskStore } from './memory-store.js';
import { RedisTaskStore } from './redis-store.js';
import { SqliteTaskStore } from './sqlite-store.js';
import type { TaskStore } from './task-store.js';

/** `TASK_STORE` when unset: a SQLite file under the working directory. */
export const DEFAULT_TASK_STORE = './data/tasks.sqlite';

/** A parsed `TASK_STORE`. */
export type TaskStoreSpec =
  | { readonly kind: 'memory' }
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'redis'; readonly url: string };

/** Options of {@link openTaskStore}. */
export interface OpenTaskStoreOptions {
  /** Redis only: prefix of every key the store writes ['smart-routing:']. */
  keyPrefix?: string;
  /** Redis only: where connection errors are logged [the dispatcher's default logger]. */
  logger?: Logger;
}

/**
 * Reads a `TASK_STORE` value. An empty or missing one is {@link DEFAULT_TASK_STORE}.
 * @throws ConfigError naming TASK_STORE for another URL scheme.
 */
export function parseTaskStoreSpec(spec: string | undefined): TaskStoreSpec {
  const value = spec?.trim() || DEFAULT_TASK_STORE;
  if (value === 'memory') return { kind: 'memory' };
  if (/^rediss?:\/\//i.test(value)) {
    try {
      new URL(value);
    } catch {
      throw new ConfigError('TASK_STORE', `is not a valid Redis URL: ${value}`);
    }
    return { kind: 'redis', url: value };
  }
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length);
    if (path.length === 0)
      throw new ConfigError('TASK_STORE', 'sqlite: needs a file path, e.g. sqlite:./data/tasks.sqlite');
    return { kind: 'sqlite', path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new ConfigError(
      'TASK_STORE',
      `must be memory, sqlite:<path>, a file path or redis://…, not ${value}`,
    );
  }
  return { kind: 'sqlite', path: value };
}

/**
 * Opens the store `spec` names (a `TASK_STORE` string or a parsed spec); resolves once it answers.
 * The caller owns it: `close()` releases it.
 * @throws ConfigError for a spec {@link parseTaskStoreSpec} refuses; rejects when the store cannot be opened.
 */
export async function openTaskStore(
  spec: string | TaskStoreSpec | undefined,
  options: OpenTaskStoreOptions = {},
): Promise<TaskStore> {
  const parsed = typeof spec === 'object' ? spec : parseTaskStoreSpec(spec);
  switch (parsed.kind) {
    case 'memory':
      return new MemoryTaskStore();
    case 'sqlite':
      return new SqliteTaskStore({ path: parsed.path });
    case 'redis':
      return RedisTaskStore.connect({
        url: parsed.url,
        keyPrefix: options.keyPrefix,
        logger: options.logger,
      });
  }
}
