/**
 * The async task routes, mounted on the Express app by http-routes.ts:
 *
 *   POST   /send-task        the /run-task body + callback_url, priority, ttl_s -> 202 (persisted)
 *   GET    /tasks/{task_id}  the task's document (status, result or error, attempts, times)
 *   DELETE /tasks/{task_id}  cancels it -> its document (status cancelled)
 *   GET    /tasks?status=&limit=&cursor=   operators' listing, newest first, paged
 *
 * Auth as /run-task (API_KEYS); errors from the dispatcher's catalog; a task store that fails
 * answers 503 task_store_unavailable.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type express from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DispatcherError } from '../errors.js';
import { invalidRequest, writeJson } from '../http-json.js';
import { MAX_PRIORITY } from '../routing/queues.js';
import { TaskStoreUnavailableError, type TaskStatus } from '../task-store/task-store.js';
import type { AsyncTasks } from './async-tasks.js';
import { statusUrl, taskDocument } from './task-document.js';

/** What the routes need. */
export interface TaskRoutesDeps {
  readonly tasks: AsyncTasks;
  /** 401 without a valid API key (as /run-task). */
  readonly requireKey: RequestHandler;
  /** The JSON body parser (with the body limit). */
  readonly json: RequestHandler;
  /** The producer's tenant from its API key (undefined: no keys configured), as on /run-task. */
  readonly tenantOf: (req: Request) => string | undefined;
  readonly logger: Logger;
}

/** Paths and methods, for the app's 405 answers. */
export const TASK_ROUTES: Record<string, string[]> = {
  '/send-task': ['POST'],
  '/tasks': ['GET', 'HEAD'],
  '/tasks/:id': ['GET', 'HEAD', 'DELETE'],
};

// As /run-task: strings reach the worker as protobuf UTF-8, where a lone surrogate would change the id.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wireString = () =>
  z.string().refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (no lone surrogates)');

const sendTaskSchema = z.object({
  task_id: wireString().min(1).max(200),
  task_type: wireString().min(1).max(200),
  label: wireString().min(1).max(200),
  parameters_json: wireString(),
  callback_url: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .max(2000)
    .optional(),
  priority: z.number().int().min(0).max(MAX_PRIORITY).optional(),
  ttl_s: z
    .number()
    .int()
    .min(1)
    .max(365 * 86_400)
    .optional(),
});

const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'expired'] as const;
const listSchema = z.object({
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().min(1).max(1000).optional(),
});

/** Mounts the routes on `app`. */
export function mountTaskRoutes(app: express.Express, deps: TaskRoutesDeps): void {
  const { tasks, requireKey, json } = deps;
  // Store failures become a 503, not a crash.
  const guard =
    (handler: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      handler(req, res).catch((err: unknown) => {
        if (err instanceof DispatcherError) return next(err);
        deps.logger.error({ err, event: 'task_store_failed', path: req.path }, 'task store failed');
        // An unreachable store says which (the shared Redis); other failures keep the catalog text.
        const detail = err instanceof TaskStoreUnavailableError ? err.message : undefined;
        next(new DispatcherError('task_store_unavailable', detail, 5));
      });
    };

  app.post(
    '/send-task',
    requireKey,
    json,
    guard(async (req, res) => {
      const parsed = sendTaskSchema.safeParse(req.body);
      if (!parsed.success) throw invalidRequest(parsed.error);
      const b = parsed.data;
      const tenant = deps.tenantOf(req);
      try {
        JSON.parse(b.parameters_json);
      } catch (err) {
        throw new DispatcherError('invalid_parameters_json', `parameters_json: ${(err as Error).message}`);
      }
      const answer = await tasks.send({
        taskId: b.task_id,
        taskType: b.task_type,
        label: b.label,
        parametersJson: b.parameters_json,
        priority: b.priority ?? 0,
        ...(b.callback_url !== undefined ? { callbackUrl: b.callback_url } : {}),
        ...(b.ttl_s !== undefined ? { ttlS: b.ttl_s } : {}),
        ...(tenant !== undefined ? { tenant } : {}),
      });
      const url = statusUrl(b.task_id);
      res.setHeader('Location', url);
      if (answer.accepted)
        writeJson(res, 202, JSON.stringify({ task_id: b.task_id, status: 'queued', status_url: url }));
      // Known id: nothing new is accepted; the stored task answers (idempotent retry).
      else writeJson(res, 200, JSON.stringify(taskDocument(answer.existing)));
    }),
  );

  app.get(
    '/tasks',
    requireKey,
    guard(async (req, res) => {
      const query = Object.fromEntries(new URL(req.originalUrl, 'http://x').searchParams);
      const parsed = listSchema.safeParse(query);
      if (!parsed.success) throw invalidRequest(parsed.error);
      let page;
      try {
        page = await tasks.list(parsed.data as { status?: TaskStatus; limit?: number; cursor?: string });
      } catch (err) {
        // A cursor the store cannot read is the caller's mistake.
        if (err instanceof Error && err.name === 'InvalidCursorError')
          throw new DispatcherError('invalid_request', `cursor: ${err.message}`);
        throw err;
      }
      writeJson(
        res,
        200,
        JSON.stringify({ tasks: page.tasks.map(taskDocument), next_cursor: page.nextCursor ?? null }),
      );
    }),
  );

  app.get(
    '/tasks/:id',
    requireKey,
    guard(async (req, res) => {
      const id = String(req.params.id);
      const record = await tasks.get(id);
      if (!record) throw new DispatcherError('task_not_found', `no task ${id}`);
      writeJson(res, 200, JSON.stringify(taskDocument(record)));
    }),
  );

  app.delete(
    '/tasks/:id',
    requireKey,
    guard(async (req, res) => {
      const id = String(req.params.id);
      const record = await tasks.cancel(id);
      if (!record) throw new DispatcherError('task_not_found', `no task ${id}`);
      writeJson(res, 200, JSON.stringify(taskDocument(record)));
    }),
  );
}
