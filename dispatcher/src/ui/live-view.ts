import type { ServerResponse } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { createAuthorizer } from '../api-keys.js';
import { DispatcherError } from '../errors.js';
import { sendError } from '../http-json.js';
import type { DispatcherMetrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import { FleetFeed, type FleetEvent } from './fleet-feed.js';
import { takeFleetSnapshot } from './fleet-snapshot.js';
import { LIVE_VIEW_CSP, LIVE_VIEW_HTML } from './live-view-page.js';

/** Options of {@link createLiveView}. */
export interface LiveViewOptions {
  readonly router: Router;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  /** Keys for GET /ui/events (as the API's; empty = open). */
  readonly apiKeys: readonly string[];
  /** Streams open at once; more get 503 too_many_viewers [32]. */
  readonly maxViewers?: number;
  /** How often the picture is compared and pushed when it changed, ms [250]. */
  readonly refreshMs?: number;
  /** A snapshot is pushed at least this often even when nothing changed (keeps waits fresh), ms [2000]. */
  readonly keepAliveMs?: number;
  /** The event feed (a new one by default). */
  readonly feed?: FleetFeed;
}

/** The live fleet view: its routes, its event feed, and a close for its streams. */
export interface LiveView {
  /** Feed it the worker endpoint's events. */
  readonly feed: FleetFeed;
  /** GET /ui (the page) and GET /ui/events (the SSE stream), to mount on the dispatcher's app. */
  readonly routes: express.Router;
  /** Open streams. */
  readonly viewers: number;
  /** Ends every stream and stops the refresh timer. Safe to call twice. */
  close(): void;
}

/** Bytes a stream may have waiting to be sent before the viewer counts as stuck. */
const MAX_BUFFERED = 1 << 20;

/** Path of the page. */
export const LIVE_VIEW_PATH = '/ui';

/**
 * The live view at GET /ui. The page is static and open (it holds no data); the picture comes
 * over Server-Sent Events from GET /ui/events, which needs an API key as the rest of the API does
 * (`Authorization: Bearer <key>` or `x-api-key`). The browser page reads the key from `/ui#key=<key>`
 * (a fragment never leaves the browser) or a form, keeps it in sessionStorage, and sends it as a
 * header, which EventSource cannot, so it reads the stream with fetch().
 *
 *   worker endpoint ─ joined / left / label events ─> FleetFeed ─ event: fleet ─────────┐
 *   router + metrics ─ every refreshMs, when changed (or keepAliveMs) ─ event: snapshot ─┴─> streams
 *   on connect: event: history (the feed's recent events), then a snapshot
 */
export function createLiveView(options: LiveViewOptions): LiveView {
  const { router, metrics, logger } = options;
  const maxViewers = options.maxViewers ?? 32;
  const refreshMs = options.refreshMs ?? 250;
  const keepAliveMs = options.keepAliveMs ?? 2000;
  const feed = options.feed ?? new FleetFeed();
  const authorized = createAuthorizer(options.apiKeys);
  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  let lastSentAt = 0;
  let refreshing = false;
  let closed = false;

  /** Writes one SSE event; a viewer that lets more than MAX_BUFFERED pile up is cut off. */
  const send = (res: ServerResponse, event: string, json: string): void => {
    if (res.writableEnded) return;
    if (res.writableLength > MAX_BUFFERED) {
      res.destroy();
      return;
    }
    // JSON has no raw newlines, so one data line per event.
    res.write(`event: ${event}\ndata: ${json}\n\n`);
  };
  const write = (res: ServerResponse, event: string, data: unknown): void =>
    send(res, event, JSON.stringify(data));

  const snapshotText = async (): Promise<{ text: string; key: string }> => {
    const snapshot = await takeFleetSnapshot(router, metrics, feed.series());
    // Compared without the clock, so an idle fleet is not re-sent every refresh.
    const { at: _at, ...rest } = snapshot;
    return { text: JSON.stringify(snapshot), key: JSON.stringify(rest) };
  };

  // One snapshot in the making at a time, so every stream gets them in the order they were taken
  // (a newer picture is never overwritten by an older one). A refresh asked for meanwhile runs
  // again right after, so a change is not held back until the next tick.
  let again = false;
  /** Streams that have had no snapshot yet: they get the next one even when nothing changed. */
  const fresh = new Set<ServerResponse>();
  const refresh = async (): Promise<void> => {
    if (refreshing) {
      again = true;
      return;
    }
    if (streams.size === 0) return;
    refreshing = true;
    try {
      do {
        again = false;
        const { text, key } = await snapshotText();
        const now = Date.now();
        const targets = key === last && now - lastSentAt < keepAliveMs ? fresh : streams;
        if (targets === streams) {
          last = key;
          lastSentAt = now;
        }
        for (const res of targets) send(res, 'snapshot', text);
        fresh.clear();
      } while (again && streams.size > 0);
    } catch (err) {
      logger.error({ err, event: 'ui_refresh_failed' }, 'live view refresh failed');
    } finally {
      refreshing = false;
    }
  };

  const unsubscribe = feed.subscribe((event: FleetEvent) => {
    for (const res of streams) write(res, 'fleet', event);
    // The picture changed with the event: push it without waiting for the next refresh.
    setImmediate(() => void refresh());
  });

  const routes = express.Router();
  routes.get(LIVE_VIEW_PATH, (_req: Request, res: Response) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Security-Policy', LIVE_VIEW_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-cache');
    res.end(LIVE_VIEW_HTML);
  });

  routes.get(`${LIVE_VIEW_PATH}/events`, (req: Request, res: Response) => {
    if (!authorized(req.headers))
      return sendError(res, new DispatcherError('unauthorized', 'missing or invalid API key'));
    if (closed) return sendError(res, new DispatcherError('shutting_down', undefined, 1));
    if (streams.size >= maxViewers)
      return sendError(res, new DispatcherError('too_many_viewers', undefined, 5));
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    streams.add(res);
    fresh.add(res);
    write(res, 'history', feed.recent());
    void refresh();
    timer ??= setInterval(() => void refresh(), refreshMs).unref();
    const drop = (): void => {
      streams.delete(res);
      fresh.delete(res);
      if (streams.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    };
    res.on('close', drop);
    res.on('error', drop);
  });

  return {
    feed,
    routes,
    get viewers() {
      return streams.size;
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const res of streams) res.end();
      streams.clear();
      fresh.clear();
    },
  };
}
