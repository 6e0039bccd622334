import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve as resolvePath, join } from 'node:path';
import { listen, readBody, tooLargeDetail, type ListeningServer } from '@smart-routing/service-kit';
import type { Logger } from 'pino';
import { z } from 'zod';
import { RUN_ID_PATTERN } from './config.js';
import { CollectorError } from './errors.js';
import { LogFileWriter } from './log-file-writer.js';
import { defaultLogger } from './logger.js';
import { ingestFormat, parseIngestBody } from './record-parser.js';

/** Options of {@link startLogCollector}. */
export interface LogCollectorOptions {
  /** TCP port; default 8001, 0 = any free port. */
  port?: number;
  /** Interface to listen on; default `0.0.0.0`. */
  host?: string;
  /** Log folder; default `./logs`. The file is `<dir>/<runId>/collector.log`. */
  dir?: string;
  /** Run id (folder name); default: the start time, e.g. `2025-01-31T12-00-00-000Z`. */
  runId?: string;
  /** Records held in memory before ingest answers 503 + Retry-After; default 20000. */
  maxBufferRecords?: number;
  /** Largest accepted request body in bytes; default 4 MiB (larger => 413). */
  maxBodyBytes?: number;
  /** Longest a record waits in memory before it is appended; default 100 ms. */
  flushIntervalMs?: number;
  /** Retry-After (seconds) sent with 503; default 1. */
  retryAfterSeconds?: number;
  /** How long close() lets in-flight requests finish before cutting connections; default 2000 ms. */
  closeGraceMs?: number;
  /** The collector's own logger (never shipped to itself); default: pino to stderr at LOG_LEVEL. */
  logger?: Logger;
}

/** Counters from `GET /stats` and {@link LogCollectorHandle.stats}. */
export interface CollectorStats {
  /** Records appended to the file. */
  records_written: number;
  /** Ingest requests accepted. */
  batches: number;
  /** Ingest requests refused as bad input (400, 413, 415); nothing of them was written. */
  rejected: number;
  /** Ingest requests refused with 503 (buffer full or shutting down) for the sender to retry. */
  throttled: number;
  /** Records in memory, not yet in the file. */
  buffered: number;
}

/** A running collector. */
export interface LogCollectorHandle {
  /** Base URL for senders, e.g. `http://127.0.0.1:8001` (loopback when listening on all interfaces). */
  readonly url: string;
  readonly port: number;
  readonly runId: string;
  /** Absolute path of `<dir>/<runId>/collector.log`. */
  readonly file: string;
  /** Current counters. */
  stats(): CollectorStats;
  /** Appends everything buffered now. */
  flush(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish, appends what is buffered, closes the file. Safe to call twice. */
  close(): Promise<void>;
}

const optionsSchema = z.object({
  port: z.number().int().min(0).max(65535).default(8001),
  host: z.string().min(1).default('0.0.0.0'),
  dir: z.string().min(1).default('./logs'),
  runId: z.string().regex(RUN_ID_PATTERN, 'letters, digits, ".", "_" or "-" only').optional(),
  maxBufferRecords: z.number().int().positive().default(20_000),
  maxBodyBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  flushIntervalMs: z.number().int().positive().default(100),
  retryAfterSeconds: z.number().int().positive().default(1),
  closeGraceMs: z.number().int().nonnegative().default(2000),
});

/** Buffered bytes that make the writer append at once rather than wait for the interval. */
const HIGH_WATER_BYTES = 256 * 1024;

/** A filesystem-safe timestamp, the default run id. */
export function defaultRunId(now: Date = new Date()): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * Starts the log collector: an HTTP server that takes batches of structured log records and appends
 * them as JSON Lines to `<dir>/<runId>/collector.log`.
 *
 *   POST /ingest  JSON array (application/json) or NDJSON (application/x-ndjson) of objects
 *                 -> 200 {accepted}; 400/413/415 bad input (nothing written); 503 + Retry-After
 *                 when the buffer is full or the collector is closing
 *   GET  /health  -> {status: "ok", run_id}
 *   GET  /stats   -> {records_written, batches, rejected, throttled, buffered}
 *
 * Each record gets `received_at` (epoch ms). A request's records enter the buffer in one step, in
 * body order, and the file is written by a single serialised appender, so a sender that sends its
 * batches one after another finds them in the file in the order it sent them.
 */
export async function startLogCollector(options: LogCollectorOptions = {}): Promise<LogCollectorHandle> {
  const { logger: givenLogger, ...rest } = options;
  const parsed = optionsSchema.safeParse(rest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`startLogCollector: invalid ${String(issue?.path[0])}: ${issue?.message}`);
  }
  const config = Object.freeze(parsed.data);
  const logger = givenLogger ?? defaultLogger('log-collector');
  const runId = config.runId ?? defaultRunId();
  const file = resolvePath(join(config.dir, runId, 'collector.log'));
  const writer = await LogFileWriter.open(file, {
    maxBufferRecords: config.maxBufferRecords,
    flushIntervalMs: config.flushIntervalMs,
    highWaterBytes: HIGH_WATER_BYTES,
    logger,
  });

  const counters = { batches: 0, rejected: 0, throttled: 0 };
  let closing = false;
  const retryAfter = { 'retry-after': String(config.retryAfterSeconds) };

  const fail = (res: ServerResponse, err: CollectorError, headers: Record<string, string> = {}): void => {
    if (err.status === 503) counters.throttled++;
    else if (err.status === 400 || err.status === 413 || err.status === 415) counters.rejected++;
    if (err.status === 503) Object.assign(headers, retryAfter);
    // After refusing a body we may not have read it all: do not reuse the connection.
    if (err.status === 413 || err.status === 415 || closing) headers.connection = 'close';
    sendJson(res, err.status, err.toBody(), headers);
  };

  const ingest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (closing) return fail(res, new CollectorError('shutting_down'));
    const format = ingestFormat(req.headers['content-type']);
    if (!format) {
      return fail(
        res,
        new CollectorError('unsupported_media_type', `got ${req.headers['content-type'] ?? 'none'}`),
      );
    }
    if (writer.full) return fail(res, new CollectorError('buffer_full'));
    const body = await readBody(req, {
      limit: config.maxBodyBytes,
      tooLarge: (info) => new CollectorError('body_too_large', tooLargeDetail(info)),
    });
    const lines = parseIngestBody(body.toString('utf8'), format, Date.now());
    if (lines.length > config.maxBufferRecords) {
      return fail(res, new CollectorError('batch_too_large', `${lines.length} > ${config.maxBufferRecords}`));
    }
    if (!writer.tryAppend(lines)) {
      return fail(res, new CollectorError(closing ? 'shutting_down' : 'buffer_full'));
    }
    counters.batches++;
    sendJson(res, 200, { accepted: lines.length }, closing ? { connection: 'close' } : {});
  };

  const stats = (): CollectorStats => ({
    records_written: writer.recordsWritten,
    batches: counters.batches,
    rejected: counters.rejected,
    throttled: counters.throttled,
    buffered: writer.buffered,
  });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const allow = (methods: string): void =>
      fail(res, new CollectorError('method_not_allowed', `use ${methods}`), { allow: methods });
    switch (path) {
      case '/ingest':
        return method === 'POST' ? ingest(req, res) : allow('POST');
      case '/health':
        if (method !== 'GET' && method !== 'HEAD') return allow('GET, HEAD');
        if (closing) return fail(res, new CollectorError('shutting_down'));
        return sendJson(res, 200, { status: 'ok', run_id: runId });
      case '/stats':
        return method === 'GET' ? sendJson(res, 200, stats()) : allow('GET');
      default:
        return fail(res, new CollectorError('not_found', `${method} ${path}`));
    }
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof CollectorError) return fail(res, err);
      if (req.destroyed) return; // the client left mid-body; nothing to answer
      logger.error({ event: 'collector_request_failed', err }, 'ingest failed');
      fail(res, new CollectorError('internal'));
    });
  });
  // Slow or stuck senders must not pin connections forever.
  server.requestTimeout = 30_000;

  let http: ListeningServer;
  try {
    http = await listen(server, { port: config.port, host: config.host, closeGraceMs: config.closeGraceMs });
  } catch (err) {
    await writer.close();
    throw err;
  }
  const { url, port } = http;
  logger.debug({ event: 'collector_listening', url, run_id: runId, file }, 'log collector listening');

  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    runId,
    file,
    stats,
    flush: () => writer.flush(),
    close() {
      closed ??= (async () => {
        closing = true;
        await http.close();
        await writer.close();
        logger.debug({ event: 'collector_closed', run_id: runId, ...stats() }, 'log collector closed');
      })();
      return closed;
    },
  };
}
