import { copyFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '@smart-routing/model-repo';
import type { Logger } from 'pino';
import { UploaderError } from './errors.js';
import { HubAuthError, HubError, HubNotFoundError, type HubClient } from './hub-client.js';
import type { Staging } from './repository-writer.js';

/**
 * Where a model's files come from: a Hugging Face-style hub (the sentence-transformers ONNX export
 * layout: `onnx/model.onnx`, `tokenizer.json`, `tokenizer_config.json`) or a local folder. Either
 * way the files land in a staging folder; nothing here touches the published repository.
 */

/** Path of the ONNX export inside a hub repository. */
export const HUB_ONNX_PATH = 'onnx/model.onnx';

/** Files that show a hub repository exists even though it has no ONNX export. */
const REPO_MARKERS = ['config.json', TOKENIZER_FILE, 'README.md'];

/** What a source put into the staging folder. */
export interface FetchedFiles {
  /** Size of model.onnx in bytes. */
  modelBytes: number;
  hasTokenizer: boolean;
  hasTokenizerConfig: boolean;
}

/** Maps a hub failure to the uploader's catalog; anything else is returned unchanged. */
export function hubErrorToUploaderError(err: unknown, modelId: string, revision: string): unknown {
  if (!(err instanceof HubError)) return err;
  if (err instanceof HubNotFoundError) {
    const what = err.missing === 'revision' ? `revision '${revision}' of '${modelId}'` : `'${modelId}'`;
    return new UploaderError('model_not_found', `${what} is not on the hub`, { cause: err });
  }
  if (err instanceof HubAuthError) return new UploaderError('hub_unauthorized', err.message, { cause: err });
  // 5xx, network failures, interrupted downloads: the message says which.
  return new UploaderError('hub_error', err.message, { cause: err });
}

/**
 * Downloads the ONNX export and tokenizer files of `modelId` at `revision` into `staging`.
 * `tokenizer.json` and `tokenizer_config.json` are optional (a model without them still serves
 * `infer`); `onnx/model.onnx` is required.
 * @throws UploaderError `model_not_found`, `no_onnx_export`, `hub_unauthorized`, `hub_error`.
 */
export async function fetchFromHub(
  hub: HubClient,
  modelId: string,
  revision: string,
  staging: Staging,
  options: { signal?: AbortSignal; logger?: Logger } = {},
): Promise<FetchedFiles> {
  const { signal } = options;
  const optional = async (path: string, dest: string): Promise<boolean> => {
    try {
      await hub.download(modelId, revision, path, dest, signal);
      return true;
    } catch (err) {
      if (err instanceof HubNotFoundError && (err.missing === 'entry' || err.missing === 'unknown'))
        return false;
      throw err;
    }
  };
  try {
    // Small files first: a missing repository or a bad token fails fast, before the big download.
    const hasTokenizer = await optional(TOKENIZER_FILE, staging.tokenizerPath);
    const hasTokenizerConfig = await optional(TOKENIZER_CONFIG_FILE, staging.tokenizerConfigPath);
    let modelBytes: number;
    try {
      modelBytes = (await hub.download(modelId, revision, HUB_ONNX_PATH, staging.modelPath, signal)).bytes;
    } catch (err) {
      if (!(err instanceof HubNotFoundError) || err.missing === 'repo' || err.missing === 'revision')
        throw err;
      let repoExists = err.missing === 'entry' || hasTokenizer || hasTokenizerConfig;
      for (const marker of REPO_MARKERS) {
        if (repoExists) break;
        repoExists = await hub.exists(modelId, revision, marker, signal);
      }
      if (!repoExists) throw err;
      throw new UploaderError(
        'no_onnx_export',
        `'${modelId}' has no ${HUB_ONNX_PATH} at revision '${revision}'; export it to ONNX (e.g. optimum-cli export onnx) or upload from a local folder`,
      );
    }
    if (!hasTokenizer) {
      options.logger?.warn(
        { event: 'tokenizer_missing', model_id: modelId, revision },
        'the model has no tokenizer.json: embed_texts will not work on it, infer will',
      );
    }
    return { modelBytes, hasTokenizer, hasTokenizerConfig };
  } catch (err) {
    throw hubErrorToUploaderError(err, modelId, revision);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ENOENT' ||
      (err as NodeJS.ErrnoException).code === 'ENOTDIR'
    ) {
      return false;
    }
    throw err;
  }
}

/**
 * Copies a local folder's `model.onnx` (or `onnx/model.onnx`) and tokenizer files into `staging`.
 * @throws UploaderError `model_not_found` (no such folder), `invalid_request` (not a folder),
 *   `no_onnx_export` (no model file).
 */
export async function copyFromLocal(folder: string, staging: Staging): Promise<FetchedFiles> {
  const root = resolve(folder);
  try {
    if (!(await stat(root)).isDirectory())
      throw new UploaderError('invalid_request', `path '${folder}' is not a folder`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UploaderError('model_not_found', `no folder at path '${folder}'`);
    }
    throw err;
  }
  let source: string | undefined;
  for (const candidate of [join(root, 'model.onnx'), join(root, HUB_ONNX_PATH)]) {
    if (await fileExists(candidate)) {
      source = candidate;
      break;
    }
  }
  if (!source) throw new UploaderError('no_onnx_export', `no model.onnx or ${HUB_ONNX_PATH} in '${folder}'`);
  await copyFile(source, staging.modelPath);
  const copyOptional = async (name: string, dest: string): Promise<boolean> => {
    if (!(await fileExists(join(root, name)))) return false;
    await copyFile(join(root, name), dest);
    return true;
  };
  const hasTokenizer = await copyOptional(TOKENIZER_FILE, staging.tokenizerPath);
  const hasTokenizerConfig = await copyOptional(TOKENIZER_CONFIG_FILE, staging.tokenizerConfigPath);
  return { modelBytes: (await stat(staging.modelPath)).size, hasTokenizer, hasTokenizerConfig };
}
