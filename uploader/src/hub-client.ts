import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';

/*
 * Why not `@huggingface/hub` (2.17.5, read 2026-12): its `downloadFile` / `fileDownloadInfo` /
 * `fileExists` cover the endpoint (`hubUrl`), token, revision and redirects (through `fetch`), but
 * not the rest of what the uploader relies on:
 * - it throws `HubApiError` with the status only: the `X-Error-Code` header (RepoNotFound,
 *   RevisionNotFound, EntryNotFound) is dropped, so "no such model/revision" (404 to the producer)
 *   cannot be told from "token refused" when the hub answers 401 to anonymous callers;
 * - it refuses any token not starting with `hf_` (`checkAccessToken`), which a self-hosted
 *   HF_ENDPOINT mirror need not issue;
 * - it first probes with `Range: bytes=0-0` and fails (`InvalidApiResponseFormatError`) unless
 *   the endpoint answers `Content-Range` and an `ETag`, which plain mirrors may not;
 * - no download progress, no AbortSignal and no header/body timeouts per request (only a custom
 *   `fetch`), and a short body is only an error if the fetch implementation says so.
 * Wrapping all of that would keep every line below except the request loop, so we keep our own.
 */

/**
 * A client for a Hugging Face-style hub: files at `{endpoint}/{model_id}/resolve/{revision}/{path}`.
 *
 *   request ──> 3xx? ──> follow (Authorization only to the hub's own origin; CDNs get presigned URLs)
 *           └─> 2xx ──> stream to disk, count bytes, log progress, compare with content-length
 *           └─> 401/403/404/5xx ──> typed HubError (the hub's X-Error-Code says repo vs file)
 */

/** Base class of every hub failure; `url` never carries credentials. */
export class HubError extends Error {
  constructor(
    message: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HubError';
  }
}

/** 401/403: a private or gated model, or a bad token. */
export class HubAuthError extends HubError {
  constructor(
    message: string,
    url: string,
    readonly status: number,
  ) {
    super(message, url);
    this.name = 'HubAuthError';
  }
}

/** What a 404 says is missing: the repository, the revision, the file, or (a plain 404) unknown. */
export type HubMissing = 'repo' | 'revision' | 'entry' | 'unknown';

/** 404 (or the hub's 401 + `X-Error-Code: RepoNotFound` for anonymous callers). */
export class HubNotFoundError extends HubError {
  constructor(
    message: string,
    url: string,
    readonly missing: HubMissing,
  ) {
    super(message, url);
    this.name = 'HubNotFoundError';
  }
}

/** Any other non-2xx status (5xx, 429, too many redirects, ...). */
export class HubServerError extends HubError {
  constructor(
    message: string,
    url: string,
    readonly status: number,
  ) {
    super(message, url);
    this.name = 'HubServerError';
  }
}

/** The hub could not be reached (DNS, refused, reset before the response, timeout). */
export class HubNetworkError extends HubError {
  constructor(message: string, url: string, options?: { cause?: unknown }) {
    super(message, url, options);
    this.name = 'HubNetworkError';
  }
}

/** The body ended early: fewer bytes than content-length, or the connection broke mid-body. */
export class TruncatedDownloadError extends HubError {
  constructor(
    message: string,
    url: string,
    readonly bytes: number,
    readonly expectedBytes: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, url, options);
    this.name = 'TruncatedDownloadError';
  }
}

/** Options of {@link HubClient}. */
export interface HubClientOptions {
  /** Hub base URL, e.g. `https://huggingface.co` (HF_ENDPOINT). */
  endpoint: string;
  /** Sent as `Authorization: Bearer <token>` to the hub's origin only; never logged. Default: none. */
  token?: string;
  /** Where download progress goes; default none (no logs). */
  logger?: Logger;
  /** Redirects followed per request, default 10. */
  maxRedirects?: number;
  /** Wait for response headers, default 60 000 ms. */
  headersTimeoutMs?: number;
  /** Longest pause between body chunks, default 60 000 ms. */
  bodyTimeoutMs?: number;
  /** Minimum time between `download_progress` logs, default 1000 ms. */
  progressIntervalMs?: number;
  /** undici dispatcher (agent/pool); default the global one. */
  dispatcher?: Dispatcher;
}

/** Result of {@link HubClient.download}. */
export interface DownloadResult {
  bytes: number;
  durationMs: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A URL safe to log or put in an error: no query (presigned CDN URLs carry signatures there). */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (err as Error | undefined)?.name === 'AbortError';
}

/** Talks to one hub. Stateless apart from its options; safe to share between uploads. */
export class HubClient {
  readonly endpoint: string;
  private readonly origin: string;
  private readonly token: string | undefined;
  private readonly logger: Logger | undefined;
  private readonly maxRedirects: number;
  private readonly headersTimeout: number;
  private readonly bodyTimeout: number;
  private readonly progressIntervalMs: number;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(options: HubClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.origin = new URL(this.endpoint).origin;
    this.token = options.token;
    this.logger = options.logger;
    this.maxRedirects = options.maxRedirects ?? 10;
    this.headersTimeout = options.headersTimeoutMs ?? 60_000;
    this.bodyTimeout = options.bodyTimeoutMs ?? 60_000;
    this.progressIntervalMs = options.progressIntervalMs ?? 1000;
    this.dispatcher = options.dispatcher;
  }

  /** `{endpoint}/{model_id}/resolve/{revision}/{path}`, each part URL-encoded. */
  fileUrl(modelId: string, revision: string, path: string): string {
    const id = modelId.split('/').map(encodeURIComponent).join('/');
    const file = path.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${file}`;
  }

  /**
   * True when the file resolves (HEAD, redirects followed), false on 404.
   * @throws HubError for anything else (auth, 5xx, network).
   */
  async exists(modelId: string, revision: string, path: string, signal?: AbortSignal): Promise<boolean> {
    try {
      const res = await this.send('HEAD', this.fileUrl(modelId, revision, path), signal);
      await res.body.dump();
      return true;
    } catch (err) {
      if (err instanceof HubNotFoundError && err.missing !== 'repo' && err.missing !== 'revision')
        return false;
      throw err;
    }
  }

  /**
   * Streams one file to `dest` (created or truncated), logging `download_started`,
   * `download_progress` (bytes, total_bytes, percent when the length is known) and
   * `download_finished`. On failure `dest` may hold partial bytes: the caller owns cleanup.
   * @throws HubError subclasses; the fs error itself when the disk write fails; the abort reason
   *   when `signal` aborts.
   */
  async download(
    modelId: string,
    revision: string,
    path: string,
    dest: string,
    signal?: AbortSignal,
  ): Promise<DownloadResult> {
    const url = this.fileUrl(modelId, revision, path);
    const started = performance.now();
    const res = await this.send('GET', url, signal);
    const encoding = headerValue(res.headers, 'content-encoding');
    const lengthHeader = headerValue(res.headers, 'content-length');
    // content-length counts encoded bytes; undici does not decode, but be safe with odd servers.
    const expected =
      lengthHeader !== undefined && (!encoding || encoding === 'identity') && /^\d+$/.test(lengthHeader)
        ? Number(lengthHeader)
        : undefined;
    const log = this.logger?.child({ model_id: modelId, revision, file: path });
    log?.info({ event: 'download_started', total_bytes: expected ?? null }, `downloading ${path}`);

    let bytes = 0;
    let lastLog = started;
    const interval = this.progressIntervalMs;
    const progress = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        const now = performance.now();
        if (now - lastLog >= interval) {
          lastLog = now;
          log?.info({
            event: 'download_progress',
            bytes,
            total_bytes: expected ?? null,
            ...(expected ? { percent: Math.round((bytes / expected) * 1000) / 10 } : {}),
          });
        }
        cb(null, chunk);
      },
    });
    let writeError: Error | undefined;
    const file = createWriteStream(dest);
    file.on('error', (err) => (writeError ??= err));
    try {
      await pipeline(res.body, progress, file, signal ? { signal } : {});
    } catch (err) {
      if (writeError) throw writeError;
      if (isAbort(err, signal)) throw signal?.reason ?? err;
      throw new TruncatedDownloadError(
        `download of ${path} was interrupted after ${bytes}${expected !== undefined ? ` of ${expected}` : ''} bytes: ${(err as Error).message}`,
        safeUrl(url),
        bytes,
        expected,
        { cause: err },
      );
    }
    if (expected !== undefined && bytes !== expected) {
      throw new TruncatedDownloadError(
        `download of ${path} ended after ${bytes} of ${expected} bytes`,
        safeUrl(url),
        bytes,
        expected,
      );
    }
    const durationMs = Math.round(performance.now() - started);
    log?.info(
      { event: 'download_finished', bytes, duration_ms: durationMs, ...(expected ? { percent: 100 } : {}) },
      `downloaded ${path}`,
    );
    return { bytes, durationMs };
  }

  /** One request with redirects followed; resolves only with a 2xx response (body unread). */
  private async send(
    method: 'GET' | 'HEAD',
    url: string,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        'user-agent': 'smart-routing-uploader',
        'accept-encoding': 'identity',
      };
      // Presigned CDN URLs must not get the token; only the hub's own origin does.
      if (this.token && new URL(current).origin === this.origin)
        headers.authorization = `Bearer ${this.token}`;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method,
          headers,
          headersTimeout: this.headersTimeout,
          bodyTimeout: this.bodyTimeout,
          ...(signal ? { signal } : {}),
          ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        });
      } catch (err) {
        if (isAbort(err, signal)) throw signal?.reason ?? err;
        throw new HubNetworkError(
          `could not reach the hub at ${safeUrl(current)}: ${(err as Error).message}`,
          safeUrl(current),
          { cause: err },
        );
      }
      const status = res.statusCode;
      if (status >= 200 && status < 300) return res;
      await res.body.dump().catch(() => undefined);
      const location = headerValue(res.headers, 'location');
      if (REDIRECTS.has(status) && location) {
        if (hop >= this.maxRedirects) {
          throw new HubServerError(`too many redirects from ${safeUrl(url)}`, safeUrl(url), status);
        }
        current = new URL(location, current).toString();
        continue;
      }
      throw this.statusError(status, res.headers, safeUrl(current));
    }
  }

  private statusError(
    status: number,
    headers: Record<string, string | string[] | undefined>,
    url: string,
  ): HubError {
    const code = headerValue(headers, 'x-error-code');
    const hubMessage = headerValue(headers, 'x-error-message');
    const detail = hubMessage ? ` (${hubMessage})` : '';
    // The public hub answers 401 + RepoNotFound to anonymous callers for repos it will not reveal.
    if (code === 'RepoNotFound')
      return new HubNotFoundError(`repository not found at ${url}${detail}`, url, 'repo');
    if (code === 'RevisionNotFound') {
      return new HubNotFoundError(`revision not found at ${url}${detail}`, url, 'revision');
    }
    if (code === 'EntryNotFound')
      return new HubNotFoundError(`file not found at ${url}${detail}`, url, 'entry');
    if (status === 404) return new HubNotFoundError(`not found: ${url}${detail}`, url, 'unknown');
    if (status === 401 || status === 403) {
      const why = this.token ? 'the token was refused or lacks access' : 'no HF_TOKEN is set';
      return new HubAuthError(`hub answered ${status} for ${url}: ${why}${detail}`, url, status);
    }
    return new HubServerError(`hub answered HTTP ${status} for ${url}${detail}`, url, status);
  }
}
