export {
  PROTO_PATH,
  ProtocolError,
  decodeDispatcherMessage,
  decodeWorkerMessage,
  encodeDispatcherMessage,
  encodeWorkerMessage,
} from './codec.js';
export { PROTOCOL_VERSION } from './messages.js';
export type {
  DispatcherMessage,
  DispatcherMessageInput,
  Drain,
  Heartbeat,
  Hello,
  LabelEvent,
  LabelEventKind,
  LabelOrder,
  LabelOrderAction,
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
