#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type UploaderConfig } from './config.js';
import { UploaderError } from './errors.js';
import { createServiceLogger, exitOnConfigError } from '@smart-routing/service-kit';
import { createLogger } from './logger.js';
import { startUploader } from './server.js';
import { createUploader } from './uploader.js';

/**
 * `smart-routing-uploader [serve]` runs the HTTP service; `smart-routing-uploader upload <model_id>`
 * puts one model into the repository and exits. Env vars as in the README; flags override them.
 * Logs (with download progress) go to stderr as pino JSON; the upload result is printed to stdout.
 */

function intArg(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

function config(overrides: { port?: string; host?: string; repository?: string }): UploaderConfig {
  return exitOnConfigError('smart-routing-uploader', () => loadConfig(process.env, overrides));
}

const program = new Command('smart-routing-uploader').description(
  'Puts models into a Triton model repository (ONNX + config.pbtxt + tokenizer files)',
);

program
  .command('serve', { isDefault: true })
  .description('run the HTTP service (POST /upload-model, GET /models, GET /health)')
  .option('--port <port>', 'port to listen on (PORT, default 8002)')
  .option('--host <host>', 'address to bind (HOST, default 127.0.0.1)')
  .option('--repository <dir>', 'model repository folder (MODEL_REPOSITORY, default ./models)')
  .action(async (flags: { port?: string; host?: string; repository?: string }) => {
    const cfg = config(flags);
    // stderr always; the log collector too when LOG_COLLECTOR_URL is set.
    const service = createServiceLogger({
      service: 'uploader',
      level: cfg.logLevel,
      collectorUrl: cfg.logCollectorUrl,
    });
    const logger = service.logger;
    // Signal handlers go in before the start: 'uploader_listening' is logged before startUploader
    // resolves, and a SIGTERM right after it must close cleanly, not kill the process.
    let stop: ((signal: string) => void) | undefined = undefined;
    let pendingSignal: string | undefined;
    const onSignal = (signal: string): void => {
      if (stop) return stop(signal);
      if (pendingSignal) process.exit(1); // a second signal while starting: give up at once
      pendingSignal = signal;
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    const handle = await startUploader({
      port: cfg.port,
      host: cfg.host,
      repository: cfg.repository,
      hfEndpoint: cfg.hfEndpoint,
      ...(cfg.hfToken ? { hfToken: cfg.hfToken } : {}),
      apiKeys: cfg.apiKeys,
      ...(cfg.localImportRoot ? { localImportRoot: cfg.localImportRoot } : {}),
      logger,
    });
    console.error(`smart-routing-uploader listening on ${handle.url} (repository ${cfg.repository})`);
    stop = (signal: string): void => {
      logger.info({ event: 'signal', signal }, 'shutting down');
      handle
        .close()
        .then(() => service.close())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ event: 'shutdown_failed', err }, 'shutdown failed');
            process.exit(1);
          },
        );
    };
    if (pendingSignal) stop(pendingSignal);
  });

program
  .command('upload <model_id>')
  .description('upload one model from the hub (or a local folder) and exit')
  .option('--revision <rev>', 'hub revision (branch, tag or commit)', 'main')
  .option('--max-batch-size <n>', 'Triton max_batch_size (0 = no batching)', intArg, 8)
  .option('--overwrite', 'replace the model if it exists', false)
  .option('--from-dir <path>', 'read model.onnx (or onnx/model.onnx) and tokenizer files from this folder')
  .option('--repository <dir>', 'model repository folder (MODEL_REPOSITORY, default ./models)')
  .action(
    async (
      modelId: string,
      flags: {
        revision: string;
        maxBatchSize: number;
        overwrite: boolean;
        fromDir?: string;
        repository?: string;
      },
    ) => {
      const cfg = config({ ...(flags.repository ? { repository: flags.repository } : {}) });
      const uploader = createUploader({
        repository: cfg.repository,
        hfEndpoint: cfg.hfEndpoint,
        ...(cfg.hfToken ? { hfToken: cfg.hfToken } : {}),
        logger: createLogger(cfg.logLevel),
      });
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort(new UploaderError('shutting_down', 'interrupted')));
      process.once('SIGTERM', () => abort.abort(new UploaderError('shutting_down', 'terminated')));
      try {
        const result = await uploader.upload(
          {
            modelId,
            revision: flags.revision,
            maxBatchSize: flags.maxBatchSize,
            overwrite: flags.overwrite,
            ...(flags.fromDir ? { source: 'local' as const, path: flags.fromDir } : {}),
          },
          abort.signal,
        );
        console.log(
          JSON.stringify({ status: result.status, model_name: result.modelName, message: result.message }),
        );
      } catch (err) {
        if (err instanceof UploaderError) {
          console.error(`smart-routing-uploader: ${err.code}: ${err.message}`);
          process.exitCode = err.code === 'shutting_down' ? 130 : 1;
          return;
        }
        throw err;
      }
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error('smart-routing-uploader:', err);
  process.exit(1);
});
