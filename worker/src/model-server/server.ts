import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServiceLogger, listen, readBody } from '@smart-routing/service-kit';
import type { InferenceSession } from 'onnxruntime-node';
import type { Logger } from 'pino';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, type EncodedInferMessage } from '@smart-routing/kserve';
import { startGrpcServer, type GrpcServerHandle } from './grpc-server.js';
import { readInferBody } from './infer-body.js';
import { inferHttp } from './inference.js';
import { ModelStore } from './model-store.js';
import { modelConfigJson, modelMetadataJson } from './triton-json.js';

/**
 * The embedded model server: Triton's HTTP/REST API (KServe v2 + the model-repository extension)
 * on ONNX Runtime, in explicit model-control mode. Plain `node:http` with a small router: the infer
 * path has no middleware to pay for.
 *
 *   GET  /v2/health/live | /v2/health/ready | /v2
 *   POST /v2/repository/index                    {"ready"?: bool}
 *   POST /v2/repository/models/{m}/load | unload
 *   GET  /v2/models/{m}[/versions/{v}]           metadata
 *   GET  /v2/models/{m}[/versions/{v}]/ready     200 or 400
 *   GET  /v2/models/{m}[/versions/{v}]/config    Triton's JSON form of config.pbtxt
 *   POST /v2/models/{m}[/versions/{v}]/infer     JSON, or Triton's binary tensor data extension
 *   GET  /v2/models/{m}[/versions/{v}]/stats     Triton's statistics extension
 *   GET  /v2/models/stats                        statistics of every ready model
 */

/** Server name and version reported by `GET /v2`. */
export const MODEL_SERVER_NAME = 'smart-routing-model-server';
export const MODEL_SERVER_VERSION = '0.1.0';

/** Triton extensions the server implements, as `GET /v2` and gRPC ServerMetadata list them. */
const EXTENSIONS = ['model_repository', 'model_configuration', 'binary_tensor_data', 'statistics'];

/** Options of `startModelServer`. */
export interface ModelServerOptions {
  /** Model repository folder (Triton layout). */
  repository: string;
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Logger. Default: pino at `LOG_LEVEL` (default 'info') to stderr. */
  logger?: Logger;
  /** Largest request body accepted, in bytes; larger ones get a 413. Default 64 MiB. */
  maxBodyBytes?: number;
  /** Largest infer response, in bytes; a larger one is an error instead of a stall. Default 64 MiB. */
  maxResponseBytes?: number;
  /** ONNX Runtime session options for every model, merged over `DEFAULT_SESSION_OPTIONS`. Default: those. */
  sessionOptions?: InferenceSession.SessionOptions;
  /** Port of the KServe v2 gRPC front (0 picks a free one). Default: no gRPC front. */
  grpcPort?: number;
}

/** A running model server. */
export interface ModelServerHandle {
  /** Base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  port: number;
  /** `host:port` of the gRPC front, when `grpcPort` was given. */
  grpcAddress?: string;
  /** Stops listening, drops connections, unloads every model. Safe to call twice. */
  close(): Promise<void>;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxBodyBytes: 64 * 1024 * 1024,
  maxResponseBytes: 64 * 1024 * 1024,
};

/** A pino logger at `LOG_LEVEL` (default 'info') writing to stderr. */
export function defaultModelServerLogger(): Logger {
  return createServiceLogger({ service: 'model-server' }).logger;
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status, { 'content-length': '0' });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Writes an encoded infer response: JSON alone, or JSON then tensor bytes with the header length. */
function sendInfer(res: ServerResponse, message: EncodedInferMessage): void {
  const headers: Record<string, string | number> = { 'content-length': message.byteLength };
  if (message.headerLength === undefined) headers['content-type'] = 'application/json';
  else {
    headers['content-type'] = 'application/octet-stream';
    headers[INFERENCE_HEADER_CONTENT_LENGTH] = message.headerLength;
  }
  res.writeHead(200, headers);
  // Corked: the head and every chunk leave in one writev.
  res.cork();
  for (const chunk of message.chunks) res.write(chunk);
  res.end();
  res.uncork();
}

/** Reads a body whole, bounded (the kit's reader): binary for infer, JSON for the other routes. */
function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  return readBody(req, {
    limit,
    tooLarge: () => MODEL_SERVER_ERRORS.bodyTooLarge(limit),
    aborted: () => MODEL_SERVER_ERRORS.badRequest('the client closed the connection before the body ended'),
  });
}

/** Parses a JSON body; an empty body is `undefined` (Triton allows it for load/unload/index). */
function parseJson(buf: Buffer): unknown {
  if (buf.length === 0) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw MODEL_SERVER_ERRORS.badJson((err as Error).message);
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw MODEL_SERVER_ERRORS.badRequest(`malformed URL segment '${s}'`);
  }
}

type Route =
  | { kind: 'live' | 'ready' | 'server' | 'index' }
  | { kind: 'load' | 'unload'; model: string }
  | { kind: 'all-stats' }
  | { kind: 'model' | 'model-ready' | 'config' | 'infer' | 'stats'; model: string; version?: string };

const METHODS: Record<Route['kind'], string> = {
  live: 'GET',
  ready: 'GET',
  server: 'GET',
  index: 'POST',
  load: 'POST',
  unload: 'POST',
  model: 'GET',
  'model-ready': 'GET',
  config: 'GET',
  infer: 'POST',
  stats: 'GET',
  'all-stats': 'GET',
};

function route(pathname: string): Route | undefined {
  const parts = pathname.replace(/\/+$/, '').split('/').slice(1);
  if (parts[0] !== 'v2') return undefined;
  const rest = parts.slice(1);
  if (rest.length === 0) return { kind: 'server' };
  if (rest[0] === 'health' && rest.length === 2) {
    if (rest[1] === 'live') return { kind: 'live' };
    if (rest[1] === 'ready') return { kind: 'ready' };
    return undefined;
  }
  if (rest[0] === 'repository') {
    if (rest.length === 2 && rest[1] === 'index') return { kind: 'index' };
    if (rest.length === 4 && rest[1] === 'models' && (rest[3] === 'load' || rest[3] === 'unload')) {
      return { kind: rest[3], model: decodeSegment(rest[2]!) };
    }
    return undefined;
  }
  // As in Triton, this shadows a model named 'stats'.
  if (rest[0] === 'models' && rest.length === 2 && rest[1] === 'stats') return { kind: 'all-stats' };
  if (rest[0] === 'models' && rest.length >= 2) {
    const model = decodeSegment(rest[1]!);
    let tail = rest.slice(2);
    let version: string | undefined;
    if (tail[0] === 'versions' && tail.length >= 2) {
      version = decodeSegment(tail[1]!);
      tail = tail.slice(2);
    }
    if (tail.length === 0) return { kind: 'model', model, version };
    if (tail.length === 1) {
      if (tail[0] === 'ready') return { kind: 'model-ready', model, version };
      if (tail[0] === 'config') return { kind: 'config', model, version };
      if (tail[0] === 'infer') return { kind: 'infer', model, version };
      if (tail[0] === 'stats') return { kind: 'stats', model, version };
    }
  }
  return undefined;
}

/**
 * Starts the model server. Nothing is loaded at start (explicit model control). A missing
 * repository folder is allowed (logged): its index is empty until models appear.
 */
export async function startModelServer(options: ModelServerOptions): Promise<ModelServerHandle> {
  const host = options.host ?? DEFAULTS.host;
  const logger = options.logger ?? defaultModelServerLogger();
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULTS.maxResponseBytes;
  const store = new ModelStore({
    repository: options.repository,
    logger,
    sessionOptions: options.sessionOptions,
  });
  if (!(await stat(options.repository).catch(() => undefined))?.isDirectory()) {
    logger.warn({ event: 'model_repository_missing', repository: options.repository });
  }
  let closing = false;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const pathname = (req.url ?? '/').split('?')[0]!;
    const r = route(pathname);
    if (!r) throw MODEL_SERVER_ERRORS.notFound(method, pathname);
    if (METHODS[r.kind] !== method) throw MODEL_SERVER_ERRORS.methodNotAllowed(method, pathname);
    if (r.kind === 'infer') {
      const headerLength = req.headers['inference-header-content-length'];
      const body = await readInferBody(req, {
        limit: maxBodyBytes,
        headerLength,
        tooLarge: () => MODEL_SERVER_ERRORS.bodyTooLarge(maxBodyBytes),
        aborted: () =>
          MODEL_SERVER_ERRORS.badRequest('the client closed the connection before the body ended'),
      });
      return sendInfer(
        res,
        await inferHttp(store, body, {
          model: r.model,
          version: r.version,
          headerLength,
          maxResponseBytes,
        }),
      );
    }
    const raw = method === 'POST' ? await readRaw(req, maxBodyBytes) : undefined;
    const body = raw === undefined ? undefined : parseJson(raw);
    switch (r.kind) {
      case 'live':
        return send(res, 200);
      case 'ready':
        return send(res, closing ? 400 : 200);
      case 'server':
        return send(res, 200, {
          name: MODEL_SERVER_NAME,
          version: MODEL_SERVER_VERSION,
          extensions: EXTENSIONS,
        });
      case 'index': {
        if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
          throw MODEL_SERVER_ERRORS.badRequest('the index request body must be a JSON object');
        }
        const ready = (body as { ready?: unknown } | undefined)?.ready;
        if (ready !== undefined && typeof ready !== 'boolean') {
          throw MODEL_SERVER_ERRORS.badRequest("'ready' must be a boolean");
        }
        return send(res, 200, await store.index(ready === true));
      }
      case 'load': {
        const params = (body as { parameters?: Record<string, unknown> } | undefined)?.parameters;
        if (params && Object.keys(params).some((k) => k === 'config' || k.startsWith('file:'))) {
          throw MODEL_SERVER_ERRORS.badRequest(
            `failed to load '${r.model}', load parameters 'config' and 'file:' are not supported by this server`,
          );
        }
        await store.load(r.model);
        return send(res, 200);
      }
      case 'unload':
        await store.unload(r.model);
        return send(res, 200);
      case 'model-ready':
        return send(res, store.isReady(r.model, r.version) ? 200 : 400);
      case 'model':
        return send(res, 200, modelMetadataJson(store.model(r.model, r.version)));
      case 'config':
        return send(res, 200, modelConfigJson(store.model(r.model, r.version)));
      case 'stats': {
        const m = store.model(r.model, r.version);
        return send(res, 200, { model_stats: [m.stats.toJson(m.name, String(m.version))] });
      }
      case 'all-stats':
        return send(res, 200, {
          model_stats: store.readyModels().map((m) => m.stats.toJson(m.name, String(m.version))),
        });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const error =
        err instanceof ModelServerError
          ? err
          : MODEL_SERVER_ERRORS.internal(err instanceof Error ? err.message : String(err));
      if (error.status >= 500) logger.error({ event: 'request_failed', url: req.url, err }, error.message);
      else
        logger.debug({
          event: 'request_rejected',
          url: req.url,
          status: error.status,
          message: error.message,
        });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body we stopped reading (too large) must not be parsed as the next request.
      if (error.status === 413) res.setHeader('connection', 'close');
      send(res, error.status, { error: error.message });
    });
  });

  const http = await listen(server, { port: options.port ?? DEFAULTS.port, host, closeGraceMs: 2000 });
  const { url, port } = http;
  logger.info({ event: 'model_server_listening', url, repository: options.repository });

  let grpcServer: GrpcServerHandle | undefined;
  if (options.grpcPort !== undefined) {
    try {
      grpcServer = await startGrpcServer({
        store,
        logger,
        host,
        port: options.grpcPort,
        metadata: { name: MODEL_SERVER_NAME, version: MODEL_SERVER_VERSION, extensions: EXTENSIONS },
        maxRequestBytes: maxBodyBytes,
        maxResponseBytes,
        isReady: () => !closing,
      });
    } catch (err) {
      // Leave nothing behind when the gRPC port cannot be bound.
      await http.close();
      await store.close();
      throw err;
    }
  }
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    ...(grpcServer ? { grpcAddress: grpcServer.address } : {}),
    close() {
      closed ??= (async () => {
        closing = true;
        // In-flight requests get a moment to finish; then connections are dropped.
        await http.close();
        await grpcServer?.close();
        await store.close();
        logger.info({ event: 'model_server_closed' });
      })();
      return closed;
    },
  };
}
