import { access, writeFile } from 'node:fs/promises';
import { formatModelConfig, listModels, modelPaths, type ModelConfig } from '@smart-routing/model-repo';
import type { Logger } from 'pino';
import { UploaderError } from './errors.js';
import { HubClient, type HubClientOptions } from './hub-client.js';
import { serviceLogger } from './logger.js';
import { modelNameFromId, validateRevision } from './model-id.js';
import { copyFromLocal, fetchFromHub, type FetchedFiles } from './model-source.js';
import { checkOnnxModel, InvalidOnnxError } from './onnx-check.js';
import { RepositoryWriter } from './repository-writer.js';
import { buildModelConfig, validateMaxBatchSize } from './triton-config.js';

/**
 * One upload, start to finish (the HTTP service and the CLI both call this):
 *
 *   validate id -> lock + staging folder -> fetch files (hub or local) -> ONNX Runtime check in a
 *   worker thread -> config.pbtxt from the graph signature -> atomic publish
 *
 * Any failure removes the staging folder, so the repository is exactly as before.
 */

/** Defaults of an upload request. */
export const UPLOAD_DEFAULTS = Object.freeze({
  revision: 'main',
  maxBatchSize: 8,
  overwrite: false,
  source: 'hub',
});

/** What to upload. */
export interface UploadRequest {
  /** Hub id (`owner/name` or `name`); also names the model when the source is local. */
  modelId: string;
  /** Git revision on the hub, default `main`. */
  revision?: string;
  /** Triton `max_batch_size`, default 8 (0 = the model does not batch). */
  maxBatchSize?: number;
  /** Replace an existing model of the same name, default false (409 model_exists). */
  overwrite?: boolean;
  /** `hub` (default) or `local`. */
  source?: 'hub' | 'local';
  /** The folder to read when `source` is `local`. */
  path?: string;
}

/** A finished upload. */
export interface UploadResult {
  status: 'uploaded';
  /** The folder name in the repository (`owner--name`). */
  modelName: string;
  /** One line for people. */
  message: string;
  replaced: boolean;
  hasTokenizer: boolean;
  /** The config written to config.pbtxt. */
  config: ModelConfig;
}

/** One model in the repository. */
export interface ModelSummary {
  name: string;
  hasTokenizer: boolean;
}

/** Options of {@link createUploader}. */
export interface UploaderCoreOptions {
  /** The model repository folder (MODEL_REPOSITORY); created on first upload. */
  repository: string;
  /** Hub base URL, default `https://huggingface.co`. */
  hfEndpoint?: string;
  /** Hub token, default none. Never logged. */
  hfToken?: string;
  /** Default: pino to stderr at LOG_LEVEL. */
  logger?: Logger;
  /** Extra hub client settings (timeouts, progress interval). */
  hub?: Omit<HubClientOptions, 'endpoint' | 'token' | 'logger'>;
  /** Limit for the ONNX Runtime check, default 300 000 ms. */
  checkTimeoutMs?: number;
  /**
   * Where `source: 'local'` may read: a folder (paths resolve inside it), `false` (refused), or
   * undefined (default: anywhere, for the CLI). The HTTP service passes LOCAL_IMPORT_ROOT or false.
   */
  localImportRoot?: string | false;
}

/** Uploads models into one repository. */
export interface Uploader {
  readonly repository: string;
  /**
   * Fetches, checks and publishes one model.
   * @throws UploaderError (see the catalog); `signal`'s reason when it aborts.
   */
  upload(request: UploadRequest, signal?: AbortSignal): Promise<UploadResult>;
  /** Models in the repository, sorted by name. */
  listModels(): Promise<ModelSummary[]>;
}

function names(tensors: { name: string }[]): string {
  return tensors.map((t) => t.name).join(', ');
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().every((n, i) => n === [...b].sort()[i]);
}

/** Creates an {@link Uploader}. */
export function createUploader(options: UploaderCoreOptions): Uploader {
  const logger = serviceLogger(options.logger);
  const writer = new RepositoryWriter(options.repository, logger);
  const hub = new HubClient({
    ...options.hub,
    endpoint: options.hfEndpoint ?? 'https://huggingface.co',
    ...(options.hfToken ? { token: options.hfToken } : {}),
    logger,
  });

  async function upload(request: UploadRequest, signal?: AbortSignal): Promise<UploadResult> {
    const started = performance.now();
    const modelName = modelNameFromId(request.modelId);
    const revision = validateRevision(request.revision ?? UPLOAD_DEFAULTS.revision);
    const maxBatchSize = request.maxBatchSize ?? UPLOAD_DEFAULTS.maxBatchSize;
    const overwrite = request.overwrite ?? UPLOAD_DEFAULTS.overwrite;
    const source = request.source ?? UPLOAD_DEFAULTS.source;
    if (source === 'local' && !request.path)
      throw new UploaderError('invalid_request', 'path is required for source local');
    validateMaxBatchSize(maxBatchSize);
    const log = logger.child({ model_id: request.modelId, model_name: modelName });
    log.info(
      { event: 'upload_started', source, revision, max_batch_size: maxBatchSize, overwrite },
      `uploading ${request.modelId}`,
    );

    const staging = await writer.begin(modelName, { overwrite });
    try {
      let files: FetchedFiles;
      if (source === 'local') {
        files = await copyFromLocal(request.path!, staging, { root: options.localImportRoot });
      } else {
        files = await fetchFromHub(hub, request.modelId, revision, staging, {
          logger: log,
          ...(signal ? { signal } : {}),
        });
      }
      signal?.throwIfAborted();
      let check;
      try {
        check = await checkOnnxModel(staging.modelPath, {
          ...(signal ? { signal } : {}),
          ...(options.checkTimeoutMs ? { timeoutMs: options.checkTimeoutMs } : {}),
        });
      } catch (err) {
        if (err instanceof InvalidOnnxError) {
          // The detail can quote the file: the operator's log only, never the caller's error.
          log.warn({ event: 'onnx_check_failed', detail: err.detail }, 'the ONNX check failed');
          throw new UploaderError('invalid_onnx', err.message, { cause: err });
        }
        throw err;
      }
      const { signature } = check;
      if (
        !sameNames(
          check.inputNames,
          signature.inputs.map((t) => t.name),
        ) ||
        !sameNames(
          check.outputNames,
          signature.outputs.map((t) => t.name),
        )
      ) {
        throw new UploaderError(
          'invalid_onnx',
          `ONNX Runtime sees inputs [${check.inputNames.join(', ')}] and outputs [${check.outputNames.join(', ')}], the graph declares [${names(signature.inputs)}] and [${names(signature.outputs)}]`,
        );
      }
      const config = buildModelConfig(modelName, signature, maxBatchSize);
      await writeFile(staging.configPath, formatModelConfig(config));
      signal?.throwIfAborted();
      const { replaced } = await writer.publish(staging);
      const durationMs = Math.round(performance.now() - started);
      log.info(
        {
          event: 'model_uploaded',
          source,
          revision,
          bytes: files.modelBytes,
          has_tokenizer: files.hasTokenizer,
          replaced,
          duration_ms: durationMs,
        },
        `uploaded ${request.modelId} as ${modelName}`,
      );
      const from = source === 'local' ? `from ${request.path}` : `from the hub at revision ${revision}`;
      const notes = [
        `max_batch_size ${maxBatchSize}`,
        `inputs ${names(config.input)}`,
        `outputs ${names(config.output)}`,
        files.hasTokenizer
          ? 'tokenizer.json included'
          : 'no tokenizer.json, so embed_texts will not work (infer will)',
        ...(replaced ? ['replaced the previous version'] : []),
      ];
      return {
        status: 'uploaded',
        modelName,
        message: `uploaded ${request.modelId} ${from} as ${modelName} (${notes.join('; ')})`,
        replaced,
        hasTokenizer: files.hasTokenizer,
        config,
      };
    } catch (err) {
      await writer.discard(staging);
      const e = err instanceof UploaderError ? err : undefined;
      log.warn(
        { event: 'upload_failed', error_code: e?.code ?? 'internal', message: (err as Error).message },
        `upload of ${request.modelId} failed`,
      );
      throw err;
    }
  }

  async function list(): Promise<ModelSummary[]> {
    const found = await listModels(options.repository);
    return Promise.all(
      found.map(async (name) => {
        const hasTokenizer = await access(modelPaths(options.repository, name).tokenizerPath).then(
          () => true,
          () => false,
        );
        return { name, hasTokenizer };
      }),
    );
  }

  return { repository: options.repository, upload, listModels: list };
}
