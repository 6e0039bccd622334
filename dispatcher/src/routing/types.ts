import type { TaskErrorCode } from '@smart-routing/proto';

/** Names of the built-in routing policies. */
export type PolicyName = 'random' | 'idle-first' | 'affinity';

/** Every built-in policy name, in the order the docs list them. */
export const POLICY_NAMES: readonly PolicyName[] = Object.freeze(['random', 'idle-first', 'affinity']);

/** A worker's admission state as the router sees it. */
export type RoutingWorkerState = 'ready' | 'draining';

/** A task as the router sees it: what it needs, not what it carries. */
export interface TaskSpec {
  /** Unique among tasks queued or in flight. */
  readonly id: string;
  /** The model the task runs on. */
  readonly label: string;
  /** Handler name, e.g. `embed_texts`; only workers announcing it get the task. */
  readonly taskType: string;
  /**
   * Who sent it (e.g. the producer's API key), for weighted fair queueing between producers.
   * Default: one shared tenant.
   */
  readonly tenant?: string;
  /**
   * Workers this task must not be sent to (they already crashed, went silent or failed on it).
   * Default: none.
   */
  readonly avoidWorkers?: ReadonlySet<string>;
  /**
   * 0 (default, lowest) to 9: a waiting task goes before every waiting task of lower priority in
   * its queue and in the global order (FIFO within a priority). Retries go first regardless.
   */
  readonly priority?: number;
}

/** The `label` of a label-free task (see {@link Router.isLabelFree}): no label queue, no eviction, no hit or miss. */
export const NO_LABEL = '';

/** What a worker says about itself when it joins (the Hello). */
export interface WorkerInfo {
  readonly id: string;
  /** Labels it can hold at once (values below 1 count as 1). */
  readonly labelCapacity: number;
  /** Tasks it runs at once (values below 1 count as 1). */
  readonly taskSlots: number;
  /** What is loaded now, most recently used first. */
  readonly loadedLabels: readonly string[];
  /** Task types it serves; empty means any. */
  readonly taskTypes: readonly string[];
  /**
   * The task types it runs without a model (Hello.label_free_task_types). Default none: a worker
   * that does not say is sent every task with its label, as before the field existed.
   */
  readonly labelFreeTaskTypes?: readonly string[];
  /** Default `ready`. */
  readonly state?: RoutingWorkerState;
  /**
   * Memory for loaded labels, bytes (Hello.memory_budget_bytes). Undefined or 0 = no budget: the
   * label count alone limits the worker.
   */
  readonly memoryBudgetBytes?: number;
}

/** A worker's report on a task it was sent (from its TaskResult). */
export interface TaskReport {
  /** Undefined when the task succeeded. */
  readonly errorCode?: TaskErrorCode;
  /** The worker had to load the label first. */
  readonly labelMiss?: boolean;
  /**
   * Measured load time for this task (ms, 0 on a hit). Not learned from: the same load arrives as
   * a LabelEvent `loaded` (see {@link LabelReport.durationMs}), which is the one the router uses.
   */
  readonly loadMs?: number;
  /** Measured run time (ms). */
  readonly runMs?: number;
  /** Labels loaded after the task, most recent first: the truth. Undefined = not reported. */
  readonly loadedLabels?: readonly string[];
}

/** A label change a worker reports (its LabelEvent). */
export interface LabelReport {
  readonly kind: 'loaded' | 'evicted' | 'load_failed';
  readonly label: string;
  /** Measured duration of the load or unload (ms); a `loaded` one is the router's load-time sample. */
  readonly durationMs?: number;
  /** Labels loaded after the change, most recent first. Undefined = not reported. */
  readonly loadedLabels?: readonly string[];
  /** On `loaded`: memory the label takes on this worker, bytes (LabelEvent.footprint_bytes). 0 = unknown. */
  readonly footprintBytes?: number;
}

/** A worker's periodic status (its Heartbeat). */
export interface WorkerStatus {
  readonly state?: RoutingWorkerState;
  /** Undefined = not reported. */
  readonly loadedLabels?: readonly string[];
}

/**
 * An instruction from the router. The caller carries out `send`, `load` and `unload` on the wire;
 * `queue` and `reject` are informational (the router already holds or refused the task).
 */
export type Decision =
  | {
      readonly type: 'send';
      readonly taskId: string;
      readonly workerId: string;
      readonly label: string;
      /** The label the worker must unload first, if any (RunTask.evictLabel). */
      readonly evictLabel: string | undefined;
      /** The router expects the worker to load the label (a miss) for this task. */
      readonly expectMiss: boolean;
    }
  | {
      readonly type: 'queue';
      readonly taskId: string;
      /** label, or `*` for the common queue */ readonly queue: string;
    }
  | { readonly type: 'reject'; readonly taskId: string; readonly reason: 'queue_full' }
  | { readonly type: 'load'; readonly workerId: string; readonly label: string }
  | { readonly type: 'unload'; readonly workerId: string; readonly label: string };

/** A task that was running on a worker, as handed back by `removeWorker`. */
export interface InFlightTask {
  readonly task: TaskSpec;
  readonly workerId: string;
  /** Router time when it was sent. */
  readonly sentAt: number;
  /** The eviction it carried. */
  readonly evictLabel: string | undefined;
  readonly expectMiss: boolean;
}
