/**
 * The KServe v2 HTTP front (the protocol of kserve/kserve's open inference protocol document, with
 * Triton's binary tensor data extension), on Node's plain `http` API in front of Express like
 * /run-task: the infer path is hot, and these routes answer in Triton's error shape.
 *
 *   GET  /v2                                  server metadata
 *   GET  /v2/health/live | /v2/health/ready   200 or 503 (open: no API key, for probes)
 *   GET  /v2/models/{m}[/versions/{v}]        model metadata (repository, else a holder)
 *   GET  /v2/models/{m}[/versions/{v}]/ready  200 or 503
 *   POST /v2/models/{m}[/versions/{v}]/infer  body -> kserve_infer task -> the holder's answer, bytes as they came
 *
 * The infer body is not parsed: only its framing is checked (Inference-Header-Content-Length an
 * integer within the body, a JSON object's opening brace first). Every version routes to the
 * model's one copy on the fleet: the worker task carries no version.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  KServeProtocolError,
  parseHeaderLength,
} from '@smart-routing/kserve';
import { BodyTooLargeError, readBody } from '@smart-routing/service-kit';
import type { Logger } from 'pino';
import { createKeyIdentifier } from '../api-keys.js';
import type { ResolvedOptions } from '../config.js';
import { DispatcherError } from '../errors.js';
import { SERVER_METADATA, type KServeFleet } from './fleet.js';
import { sendTritonDispatcherError, sendTritonError } from './triton-errors.js';

/** What the front needs. */
export interface KServeHttpDeps {
  readonly options: ResolvedOptions;
  readonly fleet: KServeFleet;
  readonly logger: Logger;
}

/** Past this many bytes over the limit, an over-limit body is not read to its end: the connection closes. */
const MAX_DISCARD_BYTES = 16 * 1024 * 1024;

const MODEL_ROUTE = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?\/?$/;

/** Whether a request is for the v2 front: `/v2` and everything under it. */
export function isKServeRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?');
}

/**
 * Whether an `Expect: 100-continue` request must be refused before its body is sent: a v2 infer
 * whose declared Content-Length is over `maxInferBodyBytes`.
 */
export function isOverLimitInfer(req: IncomingMessage, options: ResolvedOptions): boolean {
  if (!isKServeRequest(req) || req.method !== 'POST') return false;
  const declared = Number(req.headers['content-length']);
  return Number.isFinite(declared) && declared > options.maxInferBodyBytes;
}

/** The `/v2` request handler (Triton error shapes; answers every path under /v2). */
export function createKServeHttpHandler(
  deps: KServeHttpDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { options, fleet, logger } = deps;
  const identify = createKeyIdentifier(options.apiKeys, options.namedApiKeys);
  const limit = options.maxInferBodyBytes;

  const tooLarge = (res: ServerResponse, declared?: number): void => {
    // The rest of the body is read and dropped (Node does it once the answer is sent), so the
    // client reads the 413 instead of a reset; a body far over the limit closes the connection.
    if (declared !== undefined && declared > limit + MAX_DISCARD_BYTES) res.setHeader('Connection', 'close');
    const size = declared !== undefined ? `${declared} bytes` : `more than ${limit} bytes`;
    sendTritonError(
      res,
      413,
      `the request body is ${size}, over the limit of ${limit} bytes (MAX_INFER_BODY_BYTES)`,
    );
  };

  const infer = (req: IncomingMessage, res: ServerResponse, model: string, tenant?: string): void => {
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      return sendTritonError(
        res,
        400,
        `unsupported Content-Encoding '${encoding}': send the body uncompressed`,
      );
    }
    readBody(req, { limit }).then(
      (body) => {
        let headerLength: number;
        try {
          headerLength =
            parseHeaderLength(req.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()], body.length) ?? 0;
        } catch (err) {
          if (err instanceof KServeProtocolError) return sendTritonError(res, 400, err.message);
          throw err;
        }
        if (!startsWithBrace(body)) {
          return sendTritonError(
            res,
            400,
            'failed to parse the request JSON buffer: the body must start with a JSON object',
          );
        }
        let replied = false;
        const abandon = fleet.infer(
          model,
          body,
          headerLength,
          (outcome) => {
            replied = true;
            if (!outcome.ok) return sendTritonDispatcherError(res, outcome.error);
            if (res.headersSent || res.destroyed) return;
            const answer = outcome.inferred;
            const headers: Record<string, string | number> = {
              'Content-Type': answer.headerLength > 0 ? 'application/octet-stream' : 'application/json',
              'Content-Length': answer.body.byteLength,
            };
            if (answer.headerLength > 0) headers[INFERENCE_HEADER_CONTENT_LENGTH] = answer.headerLength;
            res.writeHead(200, headers).end(answer.body);
          },
          tenant,
        );
        res.once('close', () => {
          if (!replied) abandon();
        });
      },
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) return tooLarge(res, err.declared);
        // The client left mid-body: no one to answer.
        res.destroy();
      },
    );
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';
    const wrongMethod = (allowed: string): void => {
      res.setHeader('Allow', allowed);
      sendTritonError(res, 405, `use ${allowed} on ${path}`);
    };

    if (path === '/v2/health/live' || path === '/v2/health/ready') {
      if (!isGet) return wrongMethod('GET, HEAD');
      const ok = path.endsWith('/live') || fleet.isServerReady();
      if (ok) return void res.writeHead(200, { 'Content-Length': 0 }).end();
      return sendTritonError(
        res,
        503,
        'no connected worker serves kserve_infer, or the dispatcher is shutting down',
        5,
      );
    }
    const tenant = identify(req.headers);
    if (tenant === null) return sendTritonError(res, 401, 'missing or invalid API key');
    if (path === '/v2' || path === '/v2/') {
      if (!isGet) return wrongMethod('GET, HEAD');
      return writeJsonText(res, JSON.stringify(SERVER_METADATA));
    }
    const match = MODEL_ROUTE.exec(path);
    if (!match) return sendTritonError(res, 404, `no route ${method} ${path}`);
    let model: string;
    try {
      model = decodeURIComponent(match[1]!);
    } catch {
      return sendTritonError(res, 400, 'the model name is not valid percent-encoding');
    }
    const bad = fleet.checkModelName(model);
    if (bad) return sendTritonDispatcherError(res, bad);
    const action = match[3];
    if (action === '/infer') {
      if (method !== 'POST') return wrongMethod('POST');
      return infer(req, res, model, tenant);
    }
    if (!isGet) return wrongMethod('GET, HEAD');
    if (action === '/ready') {
      if (await fleet.isModelReady(model)) return void res.writeHead(200, { 'Content-Length': 0 }).end();
      return sendTritonError(res, 503, `model '${model}' is not ready on any worker`, 5);
    }
    const meta = await fleet.metadataJson(model);
    if (!meta.ok) return sendTritonDispatcherError(res, meta.error);
    writeJsonText(res, meta.json);
  };

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      // A bug here must answer this request and leave the server up.
      logger.error(
        { err, event: 'kserve_http_failed', method: req.method, url: req.url },
        'v2 request failed',
      );
      const e = err instanceof DispatcherError ? err : new DispatcherError('internal');
      sendTritonDispatcherError(res, e);
    });
  };
}

function writeJsonText(res: ServerResponse, text: string): void {
  res
    .writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
    .end(text);
}

/** Whether the first byte that is not JSON whitespace is `{` (a cheap check, not a parse). */
function startsWithBrace(body: Buffer): boolean {
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x7b;
  }
  return false;
}
