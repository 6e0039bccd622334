import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createLogShipper, type LogShipper, type LogShipperOptions } from './log-shipper.js';

/** Keys whose values are never written, wherever a caller puts them (secrets never reach a log). */
const REDACT = {
  paths: [
    'token',
    'workerToken',
    'apiKey',
    'hfToken',
    'hf_token',
    'authorization',
    '*.authorization',
    'headers.authorization',
  ],
  censor: '[redacted]',
};

/** Options of {@link createServiceLogger}. */
export interface ServiceLoggerOptions {
  /** Goes into every record as `service` ("dispatcher", "worker", "uploader", ...). */
  service: string;
  /** Lowest level logged; default LOG_LEVEL, else `info`. */
  level?: string;
  /** The collector's base URL (LOG_COLLECTOR_URL); unset or empty = stderr only. */
  collectorUrl?: string;
  /** Extra fields in every record (e.g. `{ worker_id }`); `pid` and `hostname` are there already. */
  base?: Record<string, unknown>;
  /** Shipper tuning (see {@link LogShipperOptions}); the URL comes from `collectorUrl`. */
  shipper?: Omit<LogShipperOptions, 'url'>;
  /** Where the local copy goes; default stderr (asynchronous, flushed by close() and on exit). */
  destination?: DestinationStream;
}

/** What {@link createServiceLogger} returns. */
export interface ServiceLogger {
  logger: Logger;
  /** Present when `collectorUrl` was set; read `dropped()`/`sent()` from it for metrics. */
  shipper?: LogShipper;
  /** Ships what is left (within the shipper's close timeout) and flushes stderr. Never rejects; safe to call twice. */
  close(): Promise<void>;
}

function flushDestination(destination: DestinationStream): Promise<void> {
  const flush = (destination as { flush?: (cb: (err?: Error | null) => void) => void }).flush;
  if (typeof flush !== 'function') return Promise.resolve();
  return new Promise((resolve) => {
    try {
      flush.call(destination, () => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * The logger every service CLI uses: pino JSON with `service` in each record, always to stderr and,
 * when `collectorUrl` is set, also to the log collector through a {@link LogShipper} (in-process,
 * batched, bounded; see log-shipper.ts for why it is not a worker-thread transport). Notes about the
 * shipper itself (collector unreachable / back, records dropped) go to stderr only.
 */
export function createServiceLogger(options: ServiceLoggerOptions): ServiceLogger {
  const level = options.level || process.env.LOG_LEVEL || 'info';
  const base = { pid: process.pid, hostname: hostname(), ...options.base, service: options.service };
  const destination = options.destination ?? pino.destination({ fd: 2, sync: false });
  if (!options.collectorUrl) {
    const logger = pino({ level, base, redact: REDACT }, destination);
    let closed: Promise<void> | null = null;
    return { logger, close: () => (closed ??= flushDestination(destination)) };
  }

  // The local logger reports on the shipper without feeding it.
  const local = pino({ level, base, redact: REDACT }, destination);
  const shipper = createLogShipper({
    ...options.shipper,
    url: options.collectorUrl,
    onStatusChange: (status, error) => {
      if (status === 'down') {
        local.warn(
          { event: 'log_collector_unreachable', url: options.collectorUrl, err: error },
          'log collector unreachable; buffering, then dropping logs',
        );
      } else {
        local.info(
          { event: 'log_collector_recovered', url: options.collectorUrl },
          'log collector reachable',
        );
      }
      options.shipper?.onStatusChange?.(status, error);
    },
  });
  // Both streams take every level; the logger's own level does the filtering.
  const logger = pino(
    { level, base, redact: REDACT },
    pino.multistream([
      { stream: destination, level: 'trace' },
      { stream: shipper, level: 'trace' },
    ]),
  );
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await shipper.close();
      if (shipper.dropped() > 0) {
        local.warn(
          { event: 'log_records_dropped', dropped: shipper.dropped(), sent: shipper.sent() },
          'some log records never reached the collector',
        );
      }
      await flushDestination(destination);
    })());
  return { logger, shipper, close };
}
