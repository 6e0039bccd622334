#!/usr/bin/env node
import { createServiceLogger, exitOnConfigError } from '@smart-routing/service-kit';
import { Command } from 'commander';
import { startLogCollector } from './collector.js';
import { loadConfig, type ConfigOverrides } from './config.js';

/*
 * smart-routing-log-collector: env PORT, HOST, LOG_DIR, RUN_ID, LOG_LEVEL; flags override them.
 * Logs `collector_started` {url, run_id, file} to stderr once listening; on SIGTERM/SIGINT it stops
 * accepting, appends everything buffered and exits 0.
 */

const program = new Command()
  .name('smart-routing-log-collector')
  .description('Receives structured log records over HTTP and appends them to <dir>/<run-id>/collector.log')
  .option('-p, --port <port>', 'TCP port (env PORT, default 8001; 0 = any free port)')
  .option('--host <host>', 'interface (env HOST, default 0.0.0.0)')
  .option('-d, --dir <dir>', 'log folder (env LOG_DIR, default ./logs)')
  .option('--run-id <id>', 'run id, the folder under --dir (env RUN_ID, default a timestamp)')
  .option('--log-level <level>', 'own log level (env LOG_LEVEL, default info)')
  .parse();

async function main(): Promise<void> {
  const config = exitOnConfigError('smart-routing-log-collector', () =>
    loadConfig(process.env, program.opts<ConfigOverrides>()),
  );
  // stderr only: the collector never ships its own logs (to itself).
  const service = createServiceLogger({ service: 'log-collector', level: config.logLevel });
  const logger = service.logger;
  const handle = await startLogCollector({
    port: config.port,
    host: config.host,
    dir: config.dir,
    runId: config.runId,
    logger,
  });
  logger.info(
    { event: 'collector_started', url: handle.url, run_id: handle.runId, file: handle.file },
    `log collector listening on ${handle.url}, writing ${handle.file}`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'collector_stopping', signal }, 'flushing and stopping');
    handle
      .close()
      .then(() => {
        logger.info({ event: 'collector_stopped', ...handle.stats() }, 'log collector stopped');
        void service.close().then(() => process.exit(0));
      })
      .catch((err: unknown) => {
        logger.error({ event: 'collector_stop_failed', err }, 'stopping failed');
        void service.close().then(() => process.exit(1));
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error('smart-routing-log-collector: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
