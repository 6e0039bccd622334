import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { modelPaths, TOKENIZER_CONFIG_FILE, type ModelPaths } from '@smart-routing/model-repo';
import type { Logger } from 'pino';
import { UploaderError } from './errors.js';

/**
 * Atomic writes into a Triton model repository.
 *
 *   begin(name)   lock name (409 upload_in_progress), 409 model_exists early when not overwriting,
 *                 mkdir <repo>/.tmp-<name>-<rand>/1
 *   ...caller writes model, tokenizer files and config.pbtxt into the staging folder...
 *   publish()     overwrite=false: rename(staging, <repo>/<name>) -- fails if the name exists
 *                 overwrite=true:  rename(<name>, .old-<name>-<rand>), rename(staging, <name>),
 *                                  rm -r the old folder (rolled back if the second rename fails)
 *   discard()     rm -r staging
 *
 * Staging folders are hidden (leading dot), so `listModels` and the model server never see them, and
 * they live inside the repository so rename stays on one filesystem (atomic). Readers see either
 * the old model or the new one, never a half-written folder. Locks are per process; across
 * processes, rename's refusal to replace a non-empty folder still keeps overwrite=false safe.
 */

/** Paths of an upload's staging folder (same layout as a published model). */
export interface Staging extends ModelPaths {
  /** The model's final name in the repository. */
  readonly name: string;
  readonly tokenizerConfigPath: string;
  /** Whether publish may replace an existing model. */
  readonly overwrite: boolean;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Writes models into one repository folder. */
export class RepositoryWriter {
  private readonly inProgress = new Set<string>();

  /**
   * @param repository the repository folder (created on first upload).
   * @param logger receives `model_replaced_cleanup_failed` and similar warnings; default none.
   */
  constructor(
    readonly repository: string,
    private readonly logger?: Logger,
  ) {}

  /** True when `<repo>/<name>` exists (any folder, published or hand-made). */
  async hasModel(name: string): Promise<boolean> {
    return isDirectory(modelPaths(this.repository, name).dir);
  }

  /** Names with an upload in progress in this process. */
  uploadsInProgress(): string[] {
    return [...this.inProgress];
  }

  /**
   * Locks `name` and creates its staging folder.
   * @throws UploaderError `upload_in_progress`, or `model_exists` when `overwrite` is false and the
   *   model is already there.
   */
  async begin(name: string, options: { overwrite: boolean }): Promise<Staging> {
    if (this.inProgress.has(name)) throw new UploaderError('upload_in_progress', name);
    this.inProgress.add(name);
    try {
      if (!options.overwrite && (await this.hasModel(name))) throw new UploaderError('model_exists', name);
      await mkdir(this.repository, { recursive: true });
      // Same layout as the final folder, so publishing is a single rename.
      const layout = modelPaths(this.repository, name);
      const dir = join(this.repository, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
      const inStaging = (path: string): string => join(dir, relative(layout.dir, path));
      const staging: Staging = {
        name,
        overwrite: options.overwrite,
        dir,
        configPath: inStaging(layout.configPath),
        modelPath: inStaging(layout.modelPath),
        tokenizerPath: inStaging(layout.tokenizerPath),
        tokenizerConfigPath: join(dir, TOKENIZER_CONFIG_FILE),
      };
      await mkdir(dirname(staging.modelPath), { recursive: true });
      return staging;
    } catch (err) {
      this.inProgress.delete(name);
      throw err;
    }
  }

  /**
   * Moves the staging folder to `<repo>/<name>` and releases the lock. On failure the repository
   * is as before and the staging folder is removed.
   * @throws UploaderError `model_exists` when not overwriting and the name appeared meanwhile.
   * @returns whether an existing model was replaced.
   */
  async publish(staging: Staging): Promise<{ replaced: boolean }> {
    const target = modelPaths(this.repository, staging.name).dir;
    try {
      if (!staging.overwrite) {
        try {
          await rename(staging.dir, target);
        } catch (err) {
          // rename(2) refuses to replace a non-empty folder: the atomic "create if absent".
          if (errno(err) === 'ENOTEMPTY' || errno(err) === 'EEXIST') {
            throw new UploaderError('model_exists', staging.name);
          }
          throw err;
        }
        return { replaced: false };
      }
      const aside = join(this.repository, `.old-${staging.name}-${randomBytes(4).toString('hex')}`);
      let replaced = false;
      try {
        await rename(target, aside);
        replaced = true;
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err;
      }
      try {
        await rename(staging.dir, target);
      } catch (err) {
        if (replaced) await rename(aside, target);
        throw err;
      }
      if (replaced) {
        await rm(aside, { recursive: true, force: true }).catch((err: unknown) =>
          this.logger?.warn(
            { event: 'old_model_cleanup_failed', model_name: staging.name, path: aside, err },
            'could not remove the replaced model folder',
          ),
        );
      }
      return { replaced };
    } catch (err) {
      await this.discard(staging);
      throw err;
    } finally {
      this.inProgress.delete(staging.name);
    }
  }

  /** Removes the staging folder and releases the lock. Never throws. */
  async discard(staging: Staging): Promise<void> {
    try {
      await rm(staging.dir, { recursive: true, force: true });
    } catch (err) {
      this.logger?.warn(
        { event: 'staging_cleanup_failed', model_name: staging.name, path: staging.dir, err },
        'could not remove a staging folder',
      );
    } finally {
      this.inProgress.delete(staging.name);
    }
  }
}
