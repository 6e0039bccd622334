import { constants, createWriteStream, type Stats } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
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

/** Options of {@link copyFromLocal}. */
export interface LocalSourceOptions {
  /**
   * The only folder local imports may read from (LOCAL_IMPORT_ROOT): `path` is resolved against it
   * and must stay inside it. `false` refuses every local import. Default undefined: any folder
   * (for the CLI, where the caller already has the shell).
   */
  root?: string | false;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * lstat of `path`, refusing symbolic links; undefined when it does not exist.
 * Symlinks are refused rather than followed: one inside the root could point anywhere.
 */
async function lstatNoLink(path: string, shown: string): Promise<Stats | undefined> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
    throw err;
  }
  if (st.isSymbolicLink()) {
    throw new UploaderError('local_path_forbidden', `'${shown}' is a symbolic link; links are not followed`);
  }
  return st;
}

/** Copies one regular file, opened with O_NOFOLLOW so a link swapped in after the check is refused too. */
async function copyRegularFile(from: string, to: string, shown: string): Promise<void> {
  let handle;
  try {
    handle = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (errno(err) === 'ELOOP') {
      throw new UploaderError(
        'local_path_forbidden',
        `'${shown}' is a symbolic link; links are not followed`,
      );
    }
    throw err;
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw new UploaderError('local_path_forbidden', `'${shown}' is not a regular file`);
    }
    await pipeline(handle.createReadStream({ autoClose: false }), createWriteStream(to));
  } finally {
    await handle.close();
  }
}

/**
 * Resolves the folder a local import reads, inside `root` when one is set, checking every path
 * component below the root with lstat (no symlinks anywhere on the way).
 */
async function localFolder(folder: string, root: string | false | undefined): Promise<string> {
  if (root === false) {
    throw new UploaderError(
      'local_import_disabled',
      'set LOCAL_IMPORT_ROOT on the uploader to allow local imports from that folder',
    );
  }
  if (root === undefined) {
    const dir = resolve(folder);
    const st = await lstatNoLink(dir, folder);
    if (!st) throw new UploaderError('model_not_found', `no folder at path '${folder}'`);
    if (!st.isDirectory()) throw new UploaderError('invalid_request', `path '${folder}' is not a folder`);
    return dir;
  }
  // The root itself may be a link (an operator's choice); what is below it may not.
  const base = await realpath(root);
  const dir = resolve(base, folder);
  const rel = relative(base, dir);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UploaderError('local_path_forbidden', `path '${folder}' is outside LOCAL_IMPORT_ROOT`);
  }
  let current = base;
  for (const part of rel === '' ? [] : rel.split(sep)) {
    current = join(current, part);
    const st = await lstatNoLink(current, folder);
    if (!st) throw new UploaderError('model_not_found', `no folder at path '${folder}'`);
    if (!st.isDirectory()) throw new UploaderError('invalid_request', `path '${folder}' is not a folder`);
  }
  return dir;
}

/**
 * Copies a local folder's `model.onnx` (or `onnx/model.onnx`) and tokenizer files into `staging`.
 * Only regular files are read, never through a symbolic link.
 * @throws UploaderError `model_not_found` (no such folder), `invalid_request` (not a folder),
 *   `no_onnx_export` (no model file), `local_import_disabled` (`root: false`),
 *   `local_path_forbidden` (outside the root, a symlink, not a regular file).
 */
export async function copyFromLocal(
  folder: string,
  staging: Staging,
  options: LocalSourceOptions = {},
): Promise<FetchedFiles> {
  const dir = await localFolder(folder, options.root);
  /** `name` under dir when it is there (a regular file, or a folder for `onnx`). */
  const present = async (name: string): Promise<boolean> => {
    const parts = name.split('/');
    let current = dir;
    for (const part of parts) {
      current = join(current, part);
      if (!(await lstatNoLink(current, `${folder}/${name}`))) return false;
    }
    return true;
  };
  let source: string | undefined;
  for (const candidate of ['model.onnx', HUB_ONNX_PATH]) {
    if (await present(candidate)) {
      source = candidate;
      break;
    }
  }
  if (!source) throw new UploaderError('no_onnx_export', `no model.onnx or ${HUB_ONNX_PATH} in '${folder}'`);
  await copyRegularFile(join(dir, source), staging.modelPath, `${folder}/${source}`);
  const copyOptional = async (name: string, dest: string): Promise<boolean> => {
    if (!(await present(name))) return false;
    await copyRegularFile(join(dir, name), dest, `${folder}/${name}`);
    return true;
  };
  const hasTokenizer = await copyOptional(TOKENIZER_FILE, staging.tokenizerPath);
  const hasTokenizerConfig = await copyOptional(TOKENIZER_CONFIG_FILE, staging.tokenizerConfigPath);
  return { modelBytes: (await stat(staging.modelPath)).size, hasTokenizer, hasTokenizerConfig };
}
