/**
 * The frames the dispatcher sends because of a routing decision: a `send` becomes a RunTask, a
 * `load` / `unload` a LabelOrder. The task tracker speaks decisions; this module and the worker
 * endpoint speak the wire.
 */
import type { DispatcherMessageInput, RunTask } from '@smart-routing/proto';
import type { Decision } from './routing/types.js';

/** A `send` decision. */
export type SendDecision = Extract<Decision, { type: 'send' }>;

/** A `load` or `unload` decision. */
export type LabelOrderDecision = Extract<Decision, { type: 'load' | 'unload' }>;

/** What the RunTask carries beyond the decision. */
export interface OutgoingTask {
  readonly taskType: string;
  readonly parametersJson: string;
  /** 1 for the first try. */
  readonly attempt: number;
  readonly deadlineUnixMs: number;
  /** A `kserve_infer` task's request body, passed on untouched [none]. */
  readonly inferRequest?: Uint8Array;
  /** Bytes of JSON header at the start of `inferRequest` (0: all JSON) [0]. */
  readonly inferHeaderLength?: number;
}

/** Carries decisions to the workers; each call returns false when the worker is gone (its close follows). */
export interface WorkerLink {
  runTask(decision: SendDecision, task: OutgoingTask): boolean;
  labelOrder(decision: LabelOrderDecision): boolean;
  /** A CancelTask for a task running on `workerId`. */
  cancelTask(workerId: string, taskId: string): boolean;
}

/** The RunTask frame for a `send` (a label-free task has label '' and never an eviction). */
export function runTaskFrame(decision: SendDecision, task: OutgoingTask): DispatcherMessageInput {
  return {
    runTask: {
      taskId: decision.taskId,
      taskType: task.taskType,
      label: decision.label,
      parametersJson: task.parametersJson,
      evictLabel: decision.evictLabel ?? '',
      attempt: task.attempt,
      deadlineUnixMs: task.deadlineUnixMs,
      ...(task.inferRequest !== undefined
        ? { inferRequest: task.inferRequest, inferHeaderLength: task.inferHeaderLength ?? 0 }
        : {}),
    },
  };
}

/** The LabelOrder frame for a `load` / `unload`. */
export function labelOrderFrame(decision: LabelOrderDecision): DispatcherMessageInput {
  return { labelOrder: { action: decision.type, label: decision.label } };
}

/** Replicated mode: the leader's token on every order, and the lease guard before each send. */
export interface OrderFence {
  /** The fencing token orders carry now. */
  token(): number;
  /** False on a standby, or once the leader's local lease guard ran out: the order is not sent. */
  mayOrder(): boolean;
}

/**
 * A {@link WorkerLink} over `send` (the worker endpoint's). With a `fence` (replicated mode) every
 * order carries the leader's token and none goes out unless the fence allows it; without one
 * (standalone) the frames are exactly as before.
 */
export function createWorkerLink(
  send: (workerId: string, message: DispatcherMessageInput) => boolean,
  fence?: OrderFence,
): WorkerLink {
  if (fence) {
    return {
      runTask: (decision, task) => {
        if (!fence.mayOrder()) return false;
        const frame = runTaskFrame(decision, task) as { runTask: RunTask };
        frame.runTask.fencingToken = fence.token();
        return send(decision.workerId, frame);
      },
      labelOrder: (decision) =>
        fence.mayOrder() &&
        send(decision.workerId, {
          labelOrder: { action: decision.type, label: decision.label, fencingToken: fence.token() },
        }),
      cancelTask: (workerId, taskId) =>
        fence.mayOrder() && send(workerId, { cancelTask: { taskId, fencingToken: fence.token() } }),
    };
  }
  return {
    runTask: (decision, task) => send(decision.workerId, runTaskFrame(decision, task)),
    labelOrder: (decision) => send(decision.workerId, labelOrderFrame(decision)),
    cancelTask: (workerId, taskId) => send(workerId, { cancelTask: { taskId } }),
  };
}
