#!/usr/bin/env node
/**
 * smart-routing-model-server: the embedded model server as a standalone process.
 *
 *   smart-routing-model-server --repository ./models --port 8000
 *
 * Prints one JSON line to stdout when it is ready, e.g.
 *   {"event":"model_server_ready","url":"http://127.0.0.1:8000","port":8000,"pid":1234}
 * so a parent that started it with --port 0 learns the port (and, with GRPC_PORT set, the gRPC
 * front's `grpc_address`). Logs (pino JSON) go to stderr.
 * SIGTERM/SIGINT close it cleanly (exit code 0).
 */
import { createServiceLogger, exitOnConfigError } from '@smart-routing/service-kit';
import { Command, InvalidArgumentError } from 'commander';
import { loadModelServerConfig } from './config.js';
import { startModelServer } from './server.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('port must be an integer in [0, 65535].');
  return n;
}

const program = new Command()
  .name('smart-routing-model-server')
  .description('Triton-compatible HTTP model server (KServe v2, explicit model control) on ONNX Runtime.')
  .option('--repository <path>', 'model repository folder (env MODEL_REPOSITORY, default ./models)')
  .option('--port <n>', 'port, 0 = any free port (env PORT, default 8000)', port)
  .option('--host <addr>', 'interface to listen on (env HOST, default 127.0.0.1)')
  .option('--exit-with-parent', 'shut down when stdin closes (so a child never outlives its parent)', false);
program.parse();
const flags = program.opts<{ repository?: string; port?: number; host?: string; exitWithParent: boolean }>();

const config = exitOnConfigError(
  'smart-routing-model-server',
  () => loadModelServerConfig(process.env, flags),
  (err) => `invalid environment: ${err.variable}: ${err.detail}`,
);

const service = createServiceLogger({ service: 'model-server', level: config.logLevel });
const logger = service.logger;
const handle = await startModelServer({
  repository: config.repository,
  port: config.port,
  host: config.host,
  maxBodyBytes: config.maxBodyBytes,
  maxResponseBytes: config.maxResponseBytes,
  grpcPort: config.grpcPort,
  logger,
}).catch((err: unknown) => {
  logger.fatal({ event: 'model_server_start_failed', err }, 'cannot start the model server');
  return service.close().then(() => process.exit(1));
});

process.stdout.write(
  JSON.stringify({
    event: 'model_server_ready',
    url: handle.url,
    port: handle.port,
    pid: process.pid,
    ...(handle.grpcAddress ? { grpc_address: handle.grpcAddress } : {}),
  }) + '\n',
);

let stopping = false;
function shutdown(reason: string): void {
  if (stopping) return;
  stopping = true;
  logger.info({ event: 'model_server_stopping', reason });
  handle.close().then(
    () => service.close().then(() => process.exit(0)),
    (err: unknown) => {
      logger.error({ event: 'model_server_close_failed', err });
      return service.close().then(() => process.exit(1));
    },
  );
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
if (flags.exitWithParent) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin closed'));
  process.stdin.resume();
}
