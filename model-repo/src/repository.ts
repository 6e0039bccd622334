import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelConfigError } from './model-config.js';

/**
 * The Triton repository layout: `<repo>/<model>/config.pbtxt`, `<repo>/<model>/<version>/model.onnx`,
 * tokenizer files beside config.pbtxt.
 */

/** File name of a model's config inside its folder. */
export const CONFIG_FILE = 'config.pbtxt';
/** File name of the ONNX graph inside a version folder. */
export const MODEL_FILE = 'model.onnx';
/** Hugging Face tokenizers file beside config.pbtxt. */
export const TOKENIZER_FILE = 'tokenizer.json';
/** Optional tokenizer settings (`model_max_length`) beside config.pbtxt. */
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** Paths of one model in a repository. */
export interface ModelPaths {
  dir: string;
  configPath: string;
  modelPath: string;
  tokenizerPath: string;
}

/**
 * True for a name that is a single, visible path segment (no `/`, `\`, NUL, not `.`/`..`, no
 * leading dot), so names taken from URLs cannot leave the repository.
 */
export function isValidModelName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && !name.startsWith('.');
}

/**
 * Paths of model `name` (version defaults to 1) in `repository`.
 * @throws ModelConfigError when the name is not a valid model name (see `isValidModelName`).
 */
export function modelPaths(repository: string, name: string, version = 1): ModelPaths {
  if (!isValidModelName(name)) throw new ModelConfigError(`invalid model name '${name}'`);
  const dir = join(repository, name);
  return {
    dir,
    configPath: join(dir, CONFIG_FILE),
    modelPath: join(dir, String(version), MODEL_FILE),
    tokenizerPath: join(dir, TOKENIZER_FILE),
  };
}

/**
 * Names of the models in `repository`: visible folders holding a config.pbtxt, sorted. A missing
 * repository has no models. Hidden folders (in-progress atomic writes) are skipped.
 */
export async function listModels(repository: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(repository, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const names: string[] = [];
  await Promise.all(
    entries.map(async (e) => {
      if (!isValidModelName(e.name) || !(e.isDirectory() || e.isSymbolicLink())) return;
      try {
        if ((await stat(join(repository, e.name, CONFIG_FILE))).isFile()) names.push(e.name);
      } catch {
        // Not a model folder.
      }
    }),
  );
  return names.sort();
}
