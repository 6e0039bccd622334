import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The host part of a URL clients can dial for a server bound to `host`: a wildcard address
 * (`0.0.0.0`, `::`, or none) becomes `127.0.0.1` (a Node `::` listener is dual-stack), and an IPv6
 * address gets brackets.
 */
export function advertisedHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** `<protocol>://<advertised host>:<port>`, see {@link advertisedHost}. */
export function advertisedUrl(host: string, port: number, protocol: 'http' | 'https' = 'http'): string {
  return `${protocol}://${advertisedHost(host)}:${port}`;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to bind. */
  host: string;
  /**
   * How long close() lets requests in flight finish before it cuts every connection, in ms.
   * Default 1000.
   */
  closeGraceMs?: number;
  /**
   * Work close() waits for after the server stops accepting and before the grace starts (e.g.
   * aborting and awaiting in-flight jobs so their answers go out). Default none.
   */
  beforeCut?: () => Promise<void>;
}

/** A listening server. */
export interface ListeningServer {
  /** The URL clients dial, e.g. `http://127.0.0.1:8001` (see {@link advertisedUrl}). */
  readonly url: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /**
   * Stops accepting connections, runs `beforeCut`, closes idle keep-alive connections, and after
   * `closeGraceMs` cuts the ones still busy; resolves when the server is closed. Safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * Listens with `server` on `host:port`. Rejects with the listen error (e.g. EADDRINUSE), leaving no
 * listener behind.
 *
 *   close(): server.close() ── beforeCut() ── closeIdleConnections() ── grace ──> closeAllConnections()
 *                 (no new connections)                                 └─ resolves once the last one is gone
 */
export async function listen(server: Server, options: ListenOptions): Promise<ListeningServer> {
  const graceMs = options.closeGraceMs ?? 1000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    url: advertisedUrl(options.host, port),
    port,
    close() {
      closed ??= (async () => {
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        await options.beforeCut?.();
        server.closeIdleConnections();
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        cut.unref();
        await done;
        clearTimeout(cut);
      })();
      return closed;
    },
  };
}
