export {
  PROTO_PATH,
  ProtocolError,
  decodeDispatcherMessage,
  decodeWorkerMessage,
  encodeDispatcherMessage,
  encodeWorkerMessage,
} from './codec.js';
export { PROTOCOL_VERSION } from './messages.js';
export { TASK_ERROR_TABLE, taskErrorRule } from './task-errors.js';
export type { TaskErrorRule, TaskProducerCode } from './task-errors.js';
export type {
  CancelTask,
  DispatcherMessage,
  DispatcherMessageInput,
  DispatcherRole,
  Drain,
  Heartbeat,
  Hello,
  LabelEvent,
  LabelEventKind,
  LabelOrder,
  LabelOrderAction,
  Leadership,
  Ping,
  RunTask,
  TaskError,
  TaskErrorCode,
  TaskResult,
  Welcome,
  WorkerMessage,
  WorkerMessageInput,
  WorkerState,
} from './messages.js';
