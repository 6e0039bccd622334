import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Hugging Face-style hub for tests: files under `/{model_id}/resolve/{revision}/{path}`,
 * plus per-file misbehaviour (status codes, redirects, lying content-length, a socket destroyed
 * mid-body, a gate that holds the body back). Unknown paths get a plain 404 (no X-Error-Code),
 * as a generic file server would answer.
 */

/** How one file is served. */
export interface HubFile {
  body?: Uint8Array | string;
  /** Answer this status (with `headers`) instead of the body. */
  status?: number;
  headers?: Record<string, string>;
  /** 302 to this URL (absolute, or a path on this server). */
  redirectTo?: string;
  /** Announce this content-length instead of the real one. */
  contentLength?: number;
  /** Send this many body bytes, then destroy the socket. */
  destroyAfter?: number;
  /** Headers and body wait for this promise (to hold an upload in progress). */
  gate?: Promise<void>;
}

/** One request the hub saw. */
export interface HubRequest {
  method: string;
  path: string;
  authorization: string | undefined;
}

/** A running fake hub. */
export interface FakeHub {
  readonly url: string;
  readonly requests: HubRequest[];
  /** Serves `path` of `modelId` at `revision` (default main). */
  set(modelId: string, path: string, file: HubFile, revision?: string): void;
  /** Serves a whole model folder's files. */
  setModel(modelId: string, files: Record<string, Uint8Array | string>, revision?: string): void;
  /** Serves an arbitrary path (e.g. a CDN target of a redirect). */
  setRaw(path: string, file: HubFile): void;
  /** Every request gets this status (undefined: back to normal). */
  failAll: number | undefined;
  close(): Promise<void>;
}

/** Starts a fake hub on 127.0.0.1, port 0. */
export async function startFakeHub(): Promise<FakeHub> {
  const files = new Map<string, HubFile>();
  const requests: HubRequest[] = [];
  let failAll: number | undefined;

  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ method: req.method ?? 'GET', path, authorization: req.headers.authorization });
    void (async () => {
      if (failAll !== undefined) {
        res.writeHead(failAll, { 'content-type': 'text/plain' }).end('hub failure');
        return;
      }
      const file = files.get(path);
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      if (file.gate) await file.gate;
      if (file.redirectTo) {
        res.writeHead(302, { location: file.redirectTo, ...file.headers }).end();
        return;
      }
      if (file.status) {
        res
          .writeHead(file.status, { 'content-type': 'text/plain', ...file.headers })
          .end(`status ${file.status}`);
        return;
      }
      const body = Buffer.from(file.body ?? '');
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(file.contentLength ?? body.length),
        ...file.headers,
      });
      if (req.method === 'HEAD') {
        res.end();
      } else if (file.destroyAfter !== undefined) {
        res.write(body.subarray(0, file.destroyAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      } else if (file.contentLength !== undefined && file.contentLength > body.length) {
        // Send everything there is, then hang up without the rest.
        res.write(body, () => setTimeout(() => res.socket?.destroy(), 20));
      } else {
        res.end(body);
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed: Promise<void> | undefined;

  return {
    url,
    requests,
    set(modelId, path, file, revision = 'main') {
      files.set(`/${modelId}/resolve/${revision}/${path}`, file);
    },
    setModel(modelId, modelFiles, revision = 'main') {
      for (const [path, body] of Object.entries(modelFiles))
        files.set(`/${modelId}/resolve/${revision}/${path}`, { body });
    },
    setRaw(path, file) {
      files.set(path, file);
    },
    get failAll() {
      return failAll;
    },
    set failAll(status: number | undefined) {
      failAll = status;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
