import type { Logger } from 'pino';
import { createServiceLogger } from '@smart-routing/service-kit';

/**
 * The worker's default logger: pino JSON to stderr, `service: "worker"` and `worker_id` on every
 * record, level from `level` or LOG_LEVEL (default info), secrets redacted.
 */
export function createWorkerLogger(options: { workerId: string; level?: string }): Logger {
  return createServiceLogger({
    service: 'worker',
    level: options.level,
    base: { worker_id: options.workerId },
  }).logger;
}
