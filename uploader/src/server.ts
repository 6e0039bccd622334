import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { listen } from '@smart-routing/service-kit';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { UploaderError } from './errors.js';
import type { HubClientOptions } from './hub-client.js';
import { serviceLogger } from './logger.js';
import { MAX_BATCH_SIZE_LIMIT } from './triton-config.js';
import { createUploader, type UploadRequest } from './uploader.js';

/**
 * The uploader's HTTP API: POST /upload-model, GET /models, GET /health.
 *
 * Shutdown order (close): stop accepting connections -> answer new uploads 503 shutting_down ->
 * abort in-flight uploads (each removes its staging folder and answers 503) -> wait for them ->
 * close the remaining connections.
 */

/** Options of {@link startUploader}. */
export interface UploaderOptions {
  /** The model repository folder (MODEL_REPOSITORY). Required. */
  repository: string;
  /** Default 8002; 0 picks a free port. */
  port?: number;
  /** Default `127.0.0.1` (loopback only). */
  host?: string;
  /**
   * Producer API keys, the same as the dispatcher's API_KEYS: every route but `/health` then needs
   * `Authorization: Bearer <key>` or `x-api-key: <key>`. Default none (no auth). Never logged.
   */
  apiKeys?: readonly string[];
  /**
   * The only folder `source: "local"` may read (LOCAL_IMPORT_ROOT); `path` resolves inside it.
   * Default unset: local imports are refused (403 local_import_disabled).
   */
  localImportRoot?: string;
  /** Hub base URL, default `https://huggingface.co`. */
  hfEndpoint?: string;
  /** Hub token, default none; sent as a bearer token to the hub only, never logged. */
  hfToken?: string;
  /** Default: pino to stderr at LOG_LEVEL, `service: "uploader"`. */
  logger?: Logger;
  /** Hub client timeouts and progress interval (defaults in {@link HubClientOptions}). */
  hub?: Omit<HubClientOptions, 'endpoint' | 'token' | 'logger'>;
  /** Limit for the ONNX Runtime check of an upload, default 300 000 ms. */
  checkTimeoutMs?: number;
}

/** A running uploader service. */
export interface UploaderHandle {
  /** `http://host:port` (loopback when bound to all interfaces). */
  readonly url: string;
  readonly port: number;
  /** Stops the service (see the shutdown order above). Safe to call twice. */
  close(): Promise<void>;
}

const optionsSchema = z.object({
  repository: z.string().min(1),
  port: z.number().int().min(0).max(65535).default(8002),
  host: z.string().min(1).default('127.0.0.1'),
  apiKeys: z.array(z.string().min(1)).default([]),
  localImportRoot: z.string().min(1).optional(),
  hfEndpoint: z.url({ protocol: /^https?$/ }).default('https://huggingface.co'),
  hfToken: z.string().min(1).optional(),
  checkTimeoutMs: z.number().int().positive().optional(),
});

const uploadBody = z
  .object({
    model_id: z.string(),
    revision: z.string().min(1).optional(),
    max_batch_size: z.number().int().min(0).max(MAX_BATCH_SIZE_LIMIT).optional(),
    overwrite: z.boolean().optional(),
    source: z.enum(['hub', 'local']).optional(),
    path: z.string().min(1).max(4096).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.source === 'local' && body.path === undefined) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'path is required when source is "local"' });
    }
    if (body.source !== 'local' && body.path !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: 'path is only allowed when source is "local"',
      });
    }
  });

const digest = (key: string): Buffer => createHash('sha256').update(key).digest();

/** Constant-time check of `Authorization: Bearer <key>` or `x-api-key` against `keys` (none = open). */
function createAuthorizer(keys: readonly string[]): (req: Request) => boolean {
  const digests = keys.map(digest);
  return (req) => {
    if (digests.length === 0) return true;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const header = req.headers['x-api-key'];
    const key = bearer ?? (typeof header === 'string' ? header : undefined);
    if (!key) return false;
    const d = digest(key.trim());
    // Compare with every key, so the time does not say which one matched.
    return digests.reduce((ok, k) => timingSafeEqual(d, k) || ok, false);
  };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid body';
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

/** Starts the uploader's HTTP service. */
export async function startUploader(options: UploaderOptions): Promise<UploaderHandle> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`invalid uploader option ${firstIssue(parsed.error)}`);
  const opts = parsed.data;
  const logger = serviceLogger(options.logger);
  const uploader = createUploader({
    repository: opts.repository,
    hfEndpoint: opts.hfEndpoint,
    ...(opts.hfToken ? { hfToken: opts.hfToken } : {}),
    logger,
    ...(options.hub ? { hub: options.hub } : {}),
    ...(opts.checkTimeoutMs ? { checkTimeoutMs: opts.checkTimeoutMs } : {}),
    localImportRoot: opts.localImportRoot ?? false,
  });
  const shutdown = new AbortController();
  const inFlight = new Set<Promise<unknown>>();

  const app = express();
  app.disable('x-powered-by');

  app.get('/health', (_req, res) => {
    res.json({
      status: shutdown.signal.aborted ? 'shutting_down' : 'ok',
      uploads_in_progress: inFlight.size,
    });
  });

  // Everything but /health needs a key when keys are set; checked before the body is read.
  const authorized = createAuthorizer(opts.apiKeys);
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(authorized(req) ? undefined : new UploaderError('unauthorized'));
  });
  app.use(express.json({ limit: '16kb' }));

  app.get('/models', async (_req, res) => {
    const models = await uploader.listModels();
    res.json({ models: models.map((m) => ({ name: m.name, has_tokenizer: m.hasTokenizer })) });
  });

  app.post('/upload-model', async (req, res) => {
    if (shutdown.signal.aborted) throw new UploaderError('shutting_down');
    const body = uploadBody.safeParse(req.body);
    if (!body.success) {
      const detail =
        req.body === undefined
          ? 'send a JSON object with content-type application/json'
          : firstIssue(body.error);
      throw new UploaderError('invalid_request', detail);
    }
    const b = body.data;
    const request: UploadRequest = {
      modelId: b.model_id,
      ...(b.revision !== undefined ? { revision: b.revision } : {}),
      ...(b.max_batch_size !== undefined ? { maxBatchSize: b.max_batch_size } : {}),
      ...(b.overwrite !== undefined ? { overwrite: b.overwrite } : {}),
      ...(b.source !== undefined ? { source: b.source } : {}),
      ...(b.path !== undefined ? { path: b.path } : {}),
    };
    const job = uploader.upload(request, shutdown.signal);
    inFlight.add(job);
    try {
      const result = await job;
      res.status(201).json({ status: result.status, model_name: result.modelName, message: result.message });
    } finally {
      inFlight.delete(job);
    }
  });

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new UploaderError('not_found')));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error: UploaderError;
    const bodyError = err as { type?: string; status?: number; message?: string };
    if (err instanceof UploaderError) {
      error = err;
    } else if (shutdown.signal.aborted && (err as Error)?.name === 'AbortError') {
      error = new UploaderError('shutting_down');
    } else if (bodyError.type === 'entity.too.large') {
      error = new UploaderError('payload_too_large', 'at most 16 kB');
    } else if (bodyError.type === 'entity.parse.failed') {
      error = new UploaderError('invalid_request', 'the body is not valid JSON');
    } else if (typeof bodyError.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
      error = new UploaderError('invalid_request', bodyError.message);
    } else {
      logger.error({ event: 'request_failed', method: req.method, path: req.path, err }, 'internal error');
      error = new UploaderError('internal');
    }
    if (res.headersSent) return;
    if (error.code === 'shutting_down') res.setHeader('Retry-After', '5');
    res.status(error.status).json(error.toBody());
  });

  const http = await listen(createServer(app), {
    port: opts.port,
    host: opts.host,
    closeGraceMs: 1000,
    // Abort in-flight uploads (each answers 503) and let those answers flush before sockets drop.
    beforeCut: async () => {
      shutdown.abort(new UploaderError('shutting_down'));
      await Promise.allSettled([...inFlight]);
      await new Promise((resolve) => setImmediate(resolve));
    },
  });
  const { url, port } = http;
  logger.info(
    {
      event: 'uploader_listening',
      url,
      repository: opts.repository,
      hf_endpoint: opts.hfEndpoint,
      hf_token_set: opts.hfToken !== undefined,
      api_keys_set: opts.apiKeys.length > 0,
      local_import_root: opts.localImportRoot ?? null,
    },
    `uploader listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await http.close();
      logger.info({ event: 'uploader_closed' }, 'uploader closed');
    })());

  return { url, port, close };
}
