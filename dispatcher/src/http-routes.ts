import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createAuthorizer, createKeyIdentifier } from './api-keys.js';
import type { ReplicaState } from './replication/replica-role.js';
import type { AsyncTasks } from './async-tasks/async-tasks.js';
import { mountTaskRoutes, TASK_ROUTES } from './async-tasks/task-routes.js';
import type { ResolvedOptions } from './config.js';
import { DispatcherError } from './errors.js';
import { verifyUtf8 } from './http-edges.js';
import { invalidRequest, sendError, toDispatcherError } from './http-json.js';
import type { DispatcherMetrics } from './metrics.js';
import type { RepositoryLabels } from './repository-labels.js';
import type { Router } from './routing/router.js';
import { REDIS_STORE_UNAVAILABLE } from './task-store/redis-store.js';
import type { LiveView } from './ui/live-view.js';
import { forwardUpload, listUploaderModels, uploaderAuth } from './uploader-client.js';

/** What the routes need. */
export interface HttpRoutesDeps {
  readonly options: ResolvedOptions;
  readonly router: Router;
  /** The POST /run-task handler (run-task-route.ts), mounted here for the spellings the fast entry leaves to Express. */
  readonly runTask: (req: IncomingMessage, res: ServerResponse) => void;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  readonly repository: RepositoryLabels | undefined;
  /** True once shutdown began: /health answers 503. */
  readonly isDraining: () => boolean;
  /** The live view (GET /ui, GET /ui/events); not mounted when absent. */
  readonly liveView?: LiveView;
  /**
   * After an overwrite: makes every worker holding the label unload it (see TaskTracker.retireLabel)
   * [not done].
   */
  readonly retireLabel?: (label: string) => Promise<{ refreshed: string[]; pending: string[] }>;
  /** Whether a worker is quarantined (shown as `state: "quarantined"`) [never]. */
  readonly isQuarantined?: (workerId: string) => boolean;
  /** The async task service: mounts /send-task and /tasks (async-tasks/task-routes.ts). */
  readonly asyncTasks?: AsyncTasks;
  /** Replicated mode: the replica's role and leader, on /ready and /workers [standalone]. */
  readonly replica?: () => ReplicaState;
  /** Replicated mode: whether the shared Redis answers; /ready is 503 while it does not [always]. */
  readonly sharedStoreUp?: () => boolean;
}

/** `/ready`'s `replica` when the dispatcher runs alone. */
const STANDALONE: ReplicaState = Object.freeze({ id: '', role: 'standalone', leader_id: '', epoch: 0 });

/**
 * POST /upload-model's body, checked before anything else (a bad body is 400 even with no uploader
 * configured), with the uploader's own ranges. Hub uploads only: a local folder is the uploader's
 * business (its LOCAL_IMPORT_ROOT), so `source: "local"` and `path` are refused, as is any unknown
 * field (a typo must not turn into a different upload).
 */
const uploadSchema = z.strictObject({
  model_id: z.string().min(1).max(200),
  revision: z.string().min(1).max(200).optional(),
  max_batch_size: z.number().int().min(0).max(4096).optional(),
  overwrite: z.boolean().optional(),
  source: z
    .literal('hub', {
      error:
        'only "hub" through the dispatcher: upload a local folder with the uploader itself ' +
        '(POST /upload-model on the uploader, under its LOCAL_IMPORT_ROOT, or smart-routing-uploader upload --from-dir)',
    })
    .optional(),
});

/** Known routes and their methods (anything else on these paths is a 405). */
const ROUTES: Record<string, string[]> = {
  '/run-task': ['POST'],
  '/upload-model': ['POST'],
  '/health': ['GET', 'HEAD'],
  '/ready': ['GET', 'HEAD'],
  '/workers': ['GET', 'HEAD'],
  '/labels': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/ui': ['GET', 'HEAD'],
  '/ui/events': ['GET'],
  ...TASK_ROUTES,
};

/** How long GET /labels waits for the uploader's model list. */
const LABELS_UPLOADER_TIMEOUT_MS = 2000;

/**
 * The producer and operator HTTP API on Express: GET /health, /workers, /labels, /metrics,
 * POST /upload-model, and POST /run-task through the one handler of run-task-route.ts (which the
 * server calls before Express for the exact path). Errors are always `{"error": {"code", "message"}}`.
 * /health and /metrics are open; the rest need an API key when API_KEYS is set.
 */
export function createHttpApp(deps: HttpRoutesDeps): express.Express {
  const { options, router, metrics, logger, repository } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);
  // Every route, before auth or routing: a declared body over the limit is refused unread.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const declared = Number(req.headers['content-length']);
    if (!(declared > options.maxBodyBytes)) return next();
    res.setHeader('Connection', 'close');
    sendError(
      res,
      new DispatcherError('payload_too_large', `the body is larger than ${options.maxBodyBytes} bytes`),
    );
    req.resume();
  });

  const authorized = createAuthorizer(options.apiKeys);
  const requireKey = (req: Request, _res: Response, next: NextFunction): void => {
    next(
      authorized(req.headers) ? undefined : new DispatcherError('unauthorized', 'missing or invalid API key'),
    );
  };
  // Any content type is read as JSON: producers often omit the header.
  const json = express.json({ limit: options.maxBodyBytes, type: () => true, verify: verifyUtf8 });

  // '/run-task/', '/Run-Task' and the like: Express matches them loosely; the same handler serves them.
  app.post('/run-task', (req: Request, res: Response) => deps.runTask(req, res));

  app.get('/health', (_req, res) => {
    const draining = deps.isDraining();
    res
      .status(draining ? 503 : 200)
      .json({ status: draining ? 'draining' : 'ok', workers: router.workerCount });
  });

  // Readiness: accepting producers (every replica does, a standby forwards), and which replica leads.
  // A replica that cannot reach the shared Redis accepts nothing (every producer call is a 503).
  app.get('/ready', (_req, res) => {
    const draining = deps.isDraining();
    const storeDown = deps.sharedStoreUp?.() === false;
    const body = {
      status: draining ? 'draining' : storeDown ? 'store_unreachable' : 'ready',
      workers: router.workerCount,
      replica: deps.replica?.() ?? STANDALONE,
      ...(storeDown && !draining
        ? { error: new DispatcherError('task_store_unavailable', REDIS_STORE_UNAVAILABLE).toBody().error }
        : {}),
    };
    res.status(draining || storeDown ? 503 : 200).json(body);
  });

  app.get('/workers', requireKey, (_req, res) => {
    // The body stays the list it always was; the replica's view of the lease rides in headers.
    const replica = deps.replica?.();
    if (replica)
      res.set({
        'Replica-Id': replica.id,
        'Replica-Role': replica.role,
        'Replica-Leader-Id': replica.leader_id,
        'Replica-Epoch': String(replica.epoch),
      });
    const list = [];
    for (const w of router.workers()) {
      list.push({
        id: w.id,
        labels: w.labels,
        state: deps.isQuarantined?.(w.id) === true ? 'quarantined' : w.state,
        in_flight: w.inFlight.size,
        slots: w.taskSlots,
        label_capacity: w.labelCapacity,
        task_types: [...w.taskTypes],
      });
    }
    res.json(list);
  });

  app.get('/labels', requireKey, async (_req, res) => {
    const holders = router.labelHolders();
    const known = new Set<string>();
    if (repository) for (const label of await repository.list()) known.add(label);
    if (options.uploaderUrl) {
      try {
        for (const label of await listUploaderModels(
          options.uploaderUrl,
          LABELS_UPLOADER_TIMEOUT_MS,
          uploaderAuth({}, options.apiKeys),
        ))
          known.add(label);
      } catch (err) {
        logger.warn({ err, event: 'uploader_models_failed' }, 'could not list the uploader models');
      }
    }
    for (const label of known) if (!holders.has(label)) holders.set(label, []);
    const sorted = [...holders.keys()].sort();
    res.json(Object.fromEntries(sorted.map((label) => [label, holders.get(label)])));
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });

  app.post('/upload-model', requireKey, json, async (req: Request, res: Response) => {
    const parsed = uploadSchema.safeParse(req.body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    if (!options.uploaderUrl) throw new DispatcherError('uploader_not_configured', undefined, 60);
    const auth = uploaderAuth(req.headers, options.apiKeys);
    const answer = await forwardUpload(options.uploaderUrl, parsed.data, options.uploadTimeoutMs, auth);
    if (answer.status >= 200 && answer.status < 300) repository?.invalidate();
    const body = answer.body as { model_name?: unknown } | null;
    const name = body !== null && typeof body === 'object' ? body.model_name : undefined;
    if (
      answer.status >= 200 &&
      answer.status < 300 &&
      parsed.data.overwrite &&
      typeof name === 'string' &&
      deps.retireLabel
    ) {
      // No worker may keep answering with the old model once the upload says it succeeded.
      const { refreshed, pending } = await deps.retireLabel(name);
      if (pending.length > 0)
        logger.warn(
          { event: 'stale_model_workers', label: name, worker_ids: pending },
          'workers did not confirm unloading an overwritten model in time',
        );
      res.status(answer.status).json({ ...body, refreshed_workers: refreshed, stale_workers: pending });
      return;
    }
    res.status(answer.status).json(answer.body);
  });

  if (deps.liveView) app.use(deps.liveView.routes);
  if (deps.asyncTasks) {
    const identify = createKeyIdentifier(options.apiKeys, options.namedApiKeys);
    const tenantOf = (req: Request): string | undefined => identify(req.headers) ?? undefined;
    mountTaskRoutes(app, { tasks: deps.asyncTasks, requireKey, json, logger, tenantOf });
  }

  for (const [path, methods] of Object.entries(ROUTES)) {
    app.all(path, (_req, res) => {
      res.setHeader('Allow', methods.join(', '));
      sendError(res, new DispatcherError('method_not_allowed', `use ${methods.join(' or ')} on ${path}`));
    });
  }

  app.use((req: Request, res: Response) => {
    sendError(res, new DispatcherError('not_found', `no route ${req.method} ${req.path}`));
  });

  // Every error, body-parser's included, leaves as JSON.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toDispatcherError(err, options.maxBodyBytes);
    if (e.status >= 500 && e.code === 'internal')
      logger.error({ err, event: 'http_error', method: req.method, path: req.path }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, e);
  });

  return app;
}

/**
 * Answers a request Node's HTTP parser refused (malformed request line or headers, headers over
 * Node's 16 KiB limit, a body framing error) with our JSON error instead of Node's empty 400/431.
 * Listener for the server's `clientError` event.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // As Node's default: nothing can be written once the socket is gone or a response has started.
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new DispatcherError('request_timeout', 'the request (headers or body) did not arrive in time')
      : new DispatcherError(
          'invalid_request',
          err.code === 'HPE_HEADER_OVERFLOW'
            ? 'the request headers are too large'
            : `malformed HTTP request (${err.code ?? 'parse error'})`,
        );
  const payload = JSON.stringify(e.toBody());
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}\r\nConnection: close\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
  );
}
