/**
 * TypeScript shapes of the messages in `proto/smart_routing.proto`. Field names are the proto's in
 * camelCase; enums are short lowercase strings (`WORKER_STATE_READY` -> `'ready'`).
 */

/** Bumped only on a breaking change of the wire contract. */
export const PROTOCOL_VERSION = 1;

export type WorkerState = 'unspecified' | 'ready' | 'draining';
export type TaskErrorCode =
  | 'unspecified'
  | 'bad_parameters'
  | 'unknown_task_type'
  | 'label_load_failed'
  | 'label_not_found'
  | 'inference_failed'
  | 'internal'
  | 'draining'
  | 'no_slot'
  | 'model_server_unavailable'
  | 'cancelled'
  | 'stale_leader';
export type LabelEventKind = 'unspecified' | 'loaded' | 'evicted' | 'load_failed';
export type LabelOrderAction = 'unspecified' | 'load' | 'unload';
/** The role of the dispatcher replica at the other end of a link (issue 13). */
export type DispatcherRole = 'unspecified' | 'standalone' | 'leader' | 'standby';

export interface Hello {
  protocolVersion: number;
  workerId: string;
  labelCapacity: number;
  taskSlots: number;
  /** Most recently used first. */
  loadedLabels: string[];
  taskTypes: string[];
  state: WorkerState;
  /** Subset of `taskTypes` that use no model: routed without a label, counted as neither hit nor miss. */
  labelFreeTaskTypes: string[];
  /** Memory for loaded labels, bytes; 0 = no budget (label count only). */
  memoryBudgetBytes: number;
}

export interface TaskError {
  code: TaskErrorCode;
  message: string;
}

export interface TaskResult {
  taskId: string;
  /** Exactly one of `resultJson`, `error` and `inferResponse` is set. */
  resultJson?: string;
  error?: TaskError;
  /** A `kserve_infer` answer: the model server's response body as it came. */
  inferResponse?: Uint8Array;
  /** Bytes of JSON header at the start of `inferResponse` (0: all JSON). */
  inferHeaderLength?: number;
  label: string;
  labelMiss: boolean;
  loadMs: number;
  runMs: number;
  loadedLabels: string[];
}

export interface LabelEvent {
  kind: LabelEventKind;
  label: string;
  durationMs: number;
  message: string;
  loadedLabels: string[];
  /** On `loaded`: memory the label takes on this worker, bytes; 0 = unknown. */
  footprintBytes: number;
}

export interface Heartbeat {
  inFlight: number;
  state: WorkerState;
  loadedLabels: string[];
  pingId: number;
  /** Ids of the tasks running now, from whichever replica sent them. */
  runningTaskIds: string[];
}

export interface Welcome {
  protocolVersion: number;
  heartbeatIntervalMs: number;
  /** Label capacity accepted from Hello after clamping (0: not told, an older dispatcher). */
  labelCapacity: number;
  /** Task slots accepted from Hello after clamping (0: not told). */
  taskSlots: number;
  /** Largest frame the dispatcher accepts from this worker from now on (0: not told). */
  maxFrameBytes: number;
  /** The leader's fencing token when this replica leads; 0 from a standalone dispatcher or a standby. */
  fencingToken?: number;
  /** This replica's id; empty from a standalone dispatcher. */
  replicaId: string;
  role: DispatcherRole;
}

export interface RunTask {
  taskId: string;
  taskType: string;
  label: string;
  parametersJson: string;
  /** Empty string: nothing to evict. */
  evictLabel: string;
  attempt: number;
  deadlineUnixMs: number;
  /** A `kserve_infer` request body (KServe v2 JSON or Triton binary extension); empty otherwise. */
  inferRequest?: Uint8Array;
  /** Bytes of JSON header at the start of `inferRequest` (0: the whole body is JSON). */
  inferHeaderLength?: number;
  /** The sending leader's fencing token (0: standalone dispatcher). */
  fencingToken?: number;
}

export interface LabelOrder {
  action: LabelOrderAction;
  label: string;
  /** The sending leader's fencing token (0: standalone dispatcher). */
  fencingToken?: number;
}

export interface Drain {
  reason: string;
}

export interface Ping {
  pingId: number;
}

/** Abort a running task; the worker answers its TaskResult with code `cancelled`. */
export interface CancelTask {
  taskId: string;
  /** The sending leader's fencing token (0: standalone dispatcher). */
  fencingToken?: number;
}

/** A replica has just become the leader with this token (sent on every link). */
export interface Leadership {
  fencingToken?: number;
  replicaId: string;
}

/** A frame from a worker, tagged by `body`. */
export type WorkerMessage =
  | { body: 'hello'; hello: Hello }
  | { body: 'taskResult'; taskResult: TaskResult }
  | { body: 'labelEvent'; labelEvent: LabelEvent }
  | { body: 'heartbeat'; heartbeat: Heartbeat };

/** A frame from the dispatcher, tagged by `body`. */
export type DispatcherMessage =
  | { body: 'welcome'; welcome: Welcome }
  | { body: 'runTask'; runTask: RunTask }
  | { body: 'labelOrder'; labelOrder: LabelOrder }
  | { body: 'drain'; drain: Drain }
  | { body: 'ping'; ping: Ping }
  | { body: 'cancelTask'; cancelTask: CancelTask }
  | { body: 'leadership'; leadership: Leadership };

/** Input for encoding: any field left out takes its proto default. */
export type WorkerMessageInput =
  | { hello: Partial<Hello> }
  | { taskResult: Partial<TaskResult> & { taskId: string } }
  | { labelEvent: Partial<LabelEvent> }
  | { heartbeat: Partial<Heartbeat> };

export type DispatcherMessageInput =
  | { welcome: Partial<Welcome> }
  | { runTask: Partial<RunTask> & { taskId: string } }
  | { labelOrder: Partial<LabelOrder> }
  | { drain: Partial<Drain> }
  | { ping: Partial<Ping> }
  | { cancelTask: CancelTask }
  | { leadership: Partial<Leadership> };
