/**
 * @smart-routing/dispatcher — the server: `startDispatcher(options)` starts the HTTP API for
 * producers and operators and the worker WebSocket endpoint around one routing core (see
 * dispatcher.ts); the `smart-routing-dispatcher` bin is cli.ts. Its options, handle, policy names
 * and error catalog are here.
 *
 * The routing core itself (Router, policies, Registry, queues, cost model), which the benchmark's
 * simulator drives with a virtual clock, has its own entry: `@smart-routing/dispatcher/routing`.
 */
export { ConfigError, ENV_VARS, loadConfig, resolveOptions } from './config.js';
export type { DispatcherConfig, DispatcherOptions, EnvVar, LogLevel, ResolvedOptions } from './config.js';
export { startDispatcher } from './dispatcher.js';
export type { DispatcherHandle } from './dispatcher.js';
export { ASYNC_ENV_VARS, asyncTaskEnv, resolveAsyncTaskOptions } from './async-tasks/async-options.js';
export type { AsyncTaskOptions, ResolvedAsyncTaskOptions } from './async-tasks/async-options.js';
export { SIGNATURE_HEADER, signCallback } from './async-tasks/callbacks.js';
export { DISPATCHER_ERRORS, DispatcherError } from './errors.js';
export type { DispatcherErrorCode, ErrorBody } from './errors.js';
export { seededRandom } from './routing/random.js';
export type { RandomSource } from './routing/random.js';
export { POLICY_NAMES } from './routing/types.js';
export type { PolicyName } from './routing/types.js';
export { WORKER_PATH } from './worker-endpoint.js';
export { DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from './replication/replication-options.js';
export type { ReplicationOptions, ResolvedReplicationOptions } from './replication/replication-options.js';
export type { ReplicaRoleName, ReplicaState } from './replication/replica-role.js';
export { MemoryTaskStore } from './task-store/memory-store.js';
export { DEFAULT_TASK_STORE, openTaskStore, parseTaskStoreSpec } from './task-store/open-task-store.js';
export type { OpenTaskStoreOptions, TaskStoreSpec } from './task-store/open-task-store.js';
export { DEFAULT_REDIS_KEY_PREFIX, RedisTaskStore } from './task-store/redis-store.js';
export type { RedisTaskStoreOptions } from './task-store/redis-store.js';
export { SqliteTaskStore } from './task-store/sqlite-store.js';
export type { SqliteTaskStoreOptions } from './task-store/sqlite-store.js';
export { InvalidCursorError, MAX_LIST_LIMIT } from './task-store/task-page.js';
export { FINAL_STATUSES, isFinalStatus, TaskStoreClosedError } from './task-store/task-store.js';
export type {
  NewTaskRecord,
  TaskEnding,
  TaskMode,
  TaskPage,
  TaskRecord,
  TaskStatus,
  TaskStore,
} from './task-store/task-store.js';
