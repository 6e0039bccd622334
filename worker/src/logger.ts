import { pino, type Logger } from 'pino';

/**
 * The worker's default logger: pino JSON to stderr, `service: "worker"` and `worker_id` on every
 * record, level from `level` or LOG_LEVEL (default info).
 */
export function createWorkerLogger(options: { workerId: string; level?: string }): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'worker', worker_id: options.workerId, pid: process.pid },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
