import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config.js';
import { DispatcherError } from '../errors.js';
import type { RepositoryLabels } from '../repository-labels.js';
import type { Router } from '../routing/router.js';
import type { CompletedInfer, TaskOutcome } from '../task-answer.js';
import type { RunTaskRequest, TaskReply, TaskTracker } from '../task-tracker.js';
import { repositoryMetadata } from './repository-metadata.js';

/** The worker task type that carries a KServe v2 infer request to a holder's model server. */
export const KSERVE_INFER_TASK = 'kserve_infer';

/** The worker task type that asks a holder's model server for `GET /v2/models/{m}`. */
export const KSERVE_METADATA_TASK = 'kserve_metadata';

/** What the dispatcher answers to `GET /v2` and ServerMetadata. */
export const SERVER_METADATA = Object.freeze({
  name: 'smart-routing',
  version: '0.1.0',
  // Only what the front itself honours: binary bodies pass through to the model servers untouched.
  extensions: Object.freeze(['binary_tensor_data']) as readonly string[],
});

/** Longest model name accepted (the tracker's label limit). */
const MAX_MODEL_NAME = 200;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** What the fronts need. */
export interface KServeFleetDeps {
  readonly options: ResolvedOptions;
  readonly router: Router;
  readonly tracker: TaskTracker;
  readonly repository: RepositoryLabels | undefined;
  readonly logger: Logger;
  /** True once shutdown began. */
  readonly isDraining: () => boolean;
  /** Replicated mode: how a standby hands its v2 calls to the leader [unset: standalone, all served here]. */
  readonly forwarding?: V2Forwarding;
}

/**
 * Replicated mode (issue 13): a standby's v2 calls go to the leader through Redis
 * (replication/replicated-tasks.ts); readiness is answered from the standby's own fleet picture.
 */
export interface V2Forwarding {
  /** True while this replica is a standby: infers and holder metadata go to the leader. */
  forwards(): boolean;
  /** Forwards one infer; `reply` is called exactly once. Returns the abandon (the client went away). */
  infer(
    model: string,
    infer: { body: Uint8Array; headerLength: number },
    tenant: string | undefined,
    reply: TaskReply,
  ): () => void;
  /** Forwards a JSON task (`kserve_metadata`) like POST /run-task. */
  runTask(req: RunTaskRequest, reply: TaskReply): void;
}

/** How an infer ended. */
export type InferOutcome =
  | { readonly ok: true; readonly inferred: CompletedInfer }
  | { readonly ok: false; readonly error: DispatcherError };

/**
 * The fleet seen as one Triton that holds every model: what the HTTP and gRPC fronts share. An
 * infer is a `kserve_infer` task with label = model name, routed by the TaskTracker exactly like
 * /run-task (affinity, queues, retries, timeouts, metrics). The request body is never parsed here:
 * the holder's model server checks it against the model and its refusal comes back as a 400.
 *
 *   HTTP /v2/... ─┐                                      ┌─> RunTask.infer_request (bytes as sent)
 *                 ├─> KServeFleet.infer ─> TaskTracker ──┤
 *   gRPC ─────────┘    (grpc-infer: message <-> body)    └─< TaskResult.infer_response (bytes as sent)
 *
 * On a standby (replicated mode) infers and holder metadata are forwarded to the leader through
 * Redis ({@link V2Forwarding}); the answer is the same.
 */
export class KServeFleet {
  constructor(private readonly deps: KServeFleetDeps) {}

  /**
   * The model name of a request, or the 400 to answer (empty, too long, not well-formed Unicode:
   * it travels as a protobuf string).
   */
  checkModelName(model: string): DispatcherError | undefined {
    if (model.length === 0 || model.length > MAX_MODEL_NAME || LONE_SURROGATE.test(model)) {
      return new DispatcherError(
        'invalid_request',
        `the model name must be 1 to ${MAX_MODEL_NAME} characters of well-formed Unicode`,
      );
    }
    return undefined;
  }

  /**
   * Routes one infer request body (Triton's layout: `headerLength` bytes of JSON, then binary
   * tensors; 0 = all JSON) to a worker for `model`; `reply` is called exactly once. Returns a
   * function that abandons the task (the client went away). `tenant`: the API key's name, for fair
   * queueing (as on /run-task).
   */
  infer(
    model: string,
    body: Uint8Array,
    headerLength: number,
    reply: (outcome: InferOutcome) => void,
    tenant?: string,
  ): () => void {
    const answer = (outcome: TaskOutcome): void => {
      if (!outcome.ok) reply(outcome);
      else if ('inferred' in outcome) reply(outcome);
      else
        reply({
          ok: false,
          error: new DispatcherError('internal', 'the worker answered JSON to an infer'),
        });
    };
    const { forwarding } = this.deps;
    if (forwarding?.forwards()) return forwarding.infer(model, { body, headerLength }, tenant, answer);
    const taskId = `v2-${randomUUID()}`;
    this.deps.tracker.submit(
      {
        taskId,
        taskType: KSERVE_INFER_TASK,
        label: model,
        parametersJson: '{}',
        inferRequest: body,
        inferHeaderLength: headerLength,
        tenant,
      },
      answer,
    );
    return () => this.deps.tracker.abandon(taskId);
  }

  /**
   * `GET /v2/models/{m}` as JSON text: from the repository's config when MODEL_REPOSITORY is set
   * and its config lists the tensors, else from a holder's model server (a `kserve_metadata` task).
   */
  async metadataJson(
    model: string,
  ): Promise<{ ok: true; json: string } | { ok: false; error: DispatcherError }> {
    const { repository } = this.deps;
    if (repository) {
      const fromRepo = await repositoryMetadata(repository.dir, model);
      if (fromRepo) return { ok: true, json: JSON.stringify(fromRepo) };
    }
    const { forwarding, tracker } = this.deps;
    // A standby forwards it like /run-task: the leader routes it to a holder.
    const submit = forwarding?.forwards()
      ? (req: RunTaskRequest, reply: TaskReply) => forwarding.runTask(req, reply)
      : (req: RunTaskRequest, reply: TaskReply) => tracker.submit(req, reply);
    return new Promise((resolve) => {
      submit(
        {
          taskId: `v2-meta-${randomUUID()}`,
          taskType: KSERVE_METADATA_TASK,
          label: model,
          parametersJson: '{}',
        },
        (outcome) => {
          if (!outcome.ok) resolve(outcome);
          else if ('completed' in outcome) resolve({ ok: true, json: outcome.completed.resultJson });
          else
            resolve({
              ok: false,
              error: new DispatcherError('internal', 'the worker answered bytes to metadata'),
            });
        },
      );
    });
  }

  /**
   * Ready to serve infers: not shutting down, and a connected worker runs `kserve_infer` (on a
   * standby: its own picture of the fleet, since workers link to every replica).
   */
  isServerReady(): boolean {
    return !this.deps.isDraining() && this.deps.router.taskTypeStatus(KSERVE_INFER_TASK) === 'served';
  }

  /**
   * Whether `model` can be served now: a ready worker that runs `kserve_infer` holds it (loaded,
   * not still loading), or MODEL_REPOSITORY has it and such a worker can load it on demand.
   */
  async isModelReady(model: string): Promise<boolean> {
    if (!this.isServerReady() || this.checkModelName(model)) return false;
    for (const w of this.deps.router.workers()) {
      const serves = w.taskTypes.size === 0 || w.taskTypes.has(KSERVE_INFER_TASK);
      if (serves && w.state === 'ready' && w.labels.includes(model) && !w.loading.has(model)) return true;
    }
    return this.deps.repository ? this.deps.repository.has(model) : false;
  }
}
