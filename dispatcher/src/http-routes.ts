import { createHash } from 'node:crypto';
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ResolvedOptions } from './config.js';
import { DispatcherError } from './errors.js';
import type { DispatcherMetrics } from './metrics.js';
import type { RepositoryLabels } from './repository-labels.js';
import type { Router } from './routing/router.js';
import type { TaskTracker } from './task-tracker.js';
import { forwardUpload, listUploaderModels, uploaderAuth } from './uploader-client.js';

/** What the routes need. */
export interface HttpRoutesDeps {
  readonly options: ResolvedOptions;
  readonly router: Router;
  readonly tracker: TaskTracker;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  readonly repository: RepositoryLabels | undefined;
  /** True once shutdown began: /health answers 503. */
  readonly isDraining: () => boolean;
}

// Strings reach the worker as protobuf UTF-8, where a lone surrogate becomes U+FFFD: the worker
// would answer for another task_id, the result would match no task and the slot would leak.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wireString = () =>
  z.string().refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (no lone surrogates)');

const runTaskSchema = z.object({
  task_id: wireString().min(1).max(200),
  task_type: wireString().min(1).max(200),
  label: wireString().min(1).max(200),
  parameters_json: wireString(),
});

const uploadSchema = z.object({
  model_id: z.string().min(1).max(300),
  revision: z.string().min(1).max(200).optional(),
  max_batch_size: z.number().int().min(0).max(1_000_000).optional(),
  overwrite: z.boolean().optional(),
});

/** Known routes and their methods (anything else on these paths is a 405). */
const ROUTES: Record<string, string[]> = {
  '/run-task': ['POST'],
  '/upload-model': ['POST'],
  '/health': ['GET', 'HEAD'],
  '/workers': ['GET', 'HEAD'],
  '/labels': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
};

/** How long GET /labels waits for the uploader's model list. */
const LABELS_UPLOADER_TIMEOUT_MS = 2000;

function invalid(error: z.ZodError): DispatcherError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : 'body: ';
  return new DispatcherError('invalid_request', `${where}${issue?.message ?? 'invalid'}`);
}

/** Writes a JSON answer with Node's own response API (Express's `res` is one too). */
function writeJson(res: ServerResponse, status: number, text: string, retryAfterS?: number): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  };
  if (retryAfterS !== undefined) headers['Retry-After'] = String(retryAfterS);
  res.writeHead(status, headers).end(text);
}

function sendError(res: ServerResponse, err: DispatcherError): void {
  writeJson(res, err.status, JSON.stringify(err.toBody()), err.retryAfterS);
}

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Whether a request carries one of the API keys (always true when none are configured). */
function createAuthorizer(apiKeys: readonly string[]): (headers: IncomingHttpHeaders) => boolean {
  const keyDigests = new Set(apiKeys.map(digest));
  return (headers) => {
    if (keyDigests.size === 0) return true;
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
    const key = bearer ?? headers['x-api-key'];
    // Comparing digests keeps the set lookup from leaking how much of a key matched.
    return typeof key === 'string' && keyDigests.has(digest(key));
  };
}

/** POST /run-task once the body is parsed: validate, submit, answer when the task ends. */
function runTask(rawBody: unknown, res: ServerResponse, deps: HttpRoutesDeps): void {
  const { tracker, logger } = deps;
  const parsed = runTaskSchema.safeParse(rawBody);
  if (!parsed.success) return sendError(res, invalid(parsed.error));
  const body = parsed.data;
  try {
    JSON.parse(body.parameters_json);
  } catch (err) {
    return sendError(
      res,
      new DispatcherError('invalid_parameters_json', `parameters_json: ${(err as Error).message}`),
    );
  }
  let replied = false;
  res.once('close', () => {
    if (!replied) tracker.abandon(body.task_id);
  });
  tracker.submit(
    {
      taskId: body.task_id,
      taskType: body.task_type,
      label: body.label,
      parametersJson: body.parameters_json,
    },
    (status, payload, retryAfterS) => {
      replied = true;
      if (res.headersSent || res.destroyed) return;
      let text: string;
      try {
        text = JSON.stringify(payload);
      } catch (err) {
        // A result nested deeper than JSON.stringify can recurse (an echo of deep input) must
        // still get an answer: this runs after the task left the tracker, no timer is left.
        logger.warn(
          { event: 'answer_not_serializable', task_id: body.task_id, message: (err as Error).message },
          'could not serialize a task answer',
        );
        sendError(
          res,
          new DispatcherError('worker_error', `the result cannot be relayed: ${(err as Error).message}`),
        );
        return;
      }
      writeJson(res, status, text, retryAfterS);
    },
  );
}

/**
 * The hot path: POST /run-task on Node's plain `http` API, without Express's per-request cost
 * (~70 us of CPU per request here, most of the dispatcher's budget). Returns false for anything
 * it does not take (other routes, compressed bodies, charsets other than UTF-8), which Express then
 * serves with the same validation and answers. Same rules as the Express route: API key, body limit,
 * JSON object body, catalog errors.
 */
export function createRunTaskFastPath(
  deps: HttpRoutesDeps,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { options } = deps;
  const authorized = createAuthorizer(options.apiKeys);
  const limit = options.maxBodyBytes;
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/run-task') return false;
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return false;
    if (!authorized(req.headers)) {
      sendError(res, new DispatcherError('unauthorized', 'missing or invalid API key'));
      req.resume();
      return true;
    }
    const tooLarge = (): void => {
      res.setHeader('Connection', 'close');
      sendError(res, new DispatcherError('invalid_request', `the body is larger than ${limit} bytes`));
      req.resume();
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      tooLarge();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    req.on('data', (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > limit) {
        overflow = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (overflow) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
      } catch (err) {
        sendError(
          res,
          new DispatcherError('invalid_request', `the body is not valid JSON: ${(err as Error).message}`),
        );
        return;
      }
      runTask(body, res, deps);
    });
    req.on('error', () => res.destroy());
    return true;
  };
}

/**
 * The producer and operator HTTP API (contracts.md): POST /run-task, GET /health, /workers,
 * /labels, /metrics, POST /upload-model. Only /run-task and /upload-model parse a body; errors are
 * always `{"error": {"code", "message"}}`. /health and /metrics are open; the rest need an API key
 * when API_KEYS is set.
 */
export function createHttpApp(deps: HttpRoutesDeps): express.Express {
  const { options, router, metrics, logger, repository } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  const authorized = createAuthorizer(options.apiKeys);
  const requireKey = (req: Request, _res: Response, next: NextFunction): void => {
    next(
      authorized(req.headers) ? undefined : new DispatcherError('unauthorized', 'missing or invalid API key'),
    );
  };
  // Any content type is read as JSON: producers often omit the header.
  const json = express.json({ limit: options.maxBodyBytes, type: () => true });

  app.post('/run-task', requireKey, json, (req: Request, res: Response) => runTask(req.body, res, deps));

  app.get('/health', (_req, res) => {
    const draining = deps.isDraining();
    res
      .status(draining ? 503 : 200)
      .json({ status: draining ? 'draining' : 'ok', workers: router.workerCount });
  });

  app.get('/workers', requireKey, (_req, res) => {
    const list = [];
    for (const w of router.workers()) {
      list.push({
        id: w.id,
        labels: w.labels,
        state: w.state,
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
    if (!options.uploaderUrl) throw new DispatcherError('uploader_not_configured', undefined, 60);
    const parsed = uploadSchema.safeParse(req.body);
    if (!parsed.success) throw invalid(parsed.error);
    const auth = uploaderAuth(req.headers, options.apiKeys);
    const answer = await forwardUpload(options.uploaderUrl, parsed.data, options.uploadTimeoutMs, auth);
    if (answer.status >= 200 && answer.status < 300) repository?.invalidate();
    res.status(answer.status).json(answer.body);
  });

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
  const detail =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'the request headers are too large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'the request did not arrive in time'
        : `malformed HTTP request (${err.code ?? 'parse error'})`;
  const e = new DispatcherError('invalid_request', detail);
  const payload = JSON.stringify(e.toBody());
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}\r\nConnection: close\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
  );
}

/** Maps anything thrown in a route to a catalog error. */
function toDispatcherError(err: unknown, maxBodyBytes: number): DispatcherError {
  if (err instanceof DispatcherError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.parse.failed':
      return new DispatcherError('invalid_request', `the body is not valid JSON: ${e.message}`);
    case 'entity.too.large':
      return new DispatcherError('invalid_request', `the body is larger than ${maxBodyBytes} bytes`);
    default:
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
        return new DispatcherError('invalid_request', e.message ?? 'bad request');
      return new DispatcherError('internal');
  }
}
