import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MODEL_FILE,
  ModelConfigError,
  batchedShape,
  isValidModelName,
  listModels,
  modelPaths,
  parseModelConfig,
  reconcileModelConfig,
  tritonTypeToKserve,
  type ModelConfig,
  type TensorConfig,
} from '@smart-routing/model-repo';
import type { InferenceSession } from 'onnxruntime-node';
import type { Logger } from 'pino';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import { DynamicBatcher, type BatchItem, type BatchResult, type Execute } from './batcher.js';
import { SessionRunError, SessionThread, SpareThread } from './session-thread.js';
import { ModelStatistics, nowNs } from './statistics.js';
import { graphSignature } from './tensors.js';

/**
 * The models of one repository and their life cycle, in Triton's explicit model-control mode:
 * nothing is loaded until asked. Per model, loads and unloads run one after another; a load asked
 * while another load of the same model is pending joins it.
 *
 *   (not loaded) ──load──▶ LOADING ──ok──▶ READY ──unload──▶ UNLOADING ──▶ UNAVAILABLE "unloaded"
 *                             └──fail──▶ UNAVAILABLE "<why>"      (waits for in-flight infers)
 */

/** Triton's model states, as the repository index reports them. */
export type ModelState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

/** One entry of `POST /v2/repository/index`; a never-loaded model has only a name (as Triton). */
export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  state?: ModelState;
  reason?: string;
}

/** One input or output of a loaded model. */
export interface TensorSpec {
  config: TensorConfig;
  /** KServe datatype ('INT64'). */
  datatype: string;
  /** Full shape including the batch dimension (-1) when the model batches. */
  shape: number[];
}

/** A READY model: its completed config, tensors and session thread. */
export interface LoadedModel {
  name: string;
  version: number;
  config: ModelConfig;
  thread: SessionThread;
  /** One session run, with ONNX Runtime's failures as ModelServerErrors. */
  execute: Execute;
  /** Present when the config has `dynamic_batching` (and the model batches). */
  batcher?: DynamicBatcher;
  /** Triton's statistics for this version. */
  stats: ModelStatistics;
  inputs: Map<string, TensorSpec>;
  outputs: Map<string, TensorSpec>;
  /** Config text and model file stamp, to tell whether a repeated load must reload. */
  fingerprint: string;
  inFlight: number;
  onDrained: (() => void) | undefined;
}

interface Entry {
  name: string;
  state?: ModelState;
  reason: string;
  version?: number;
  model?: LoadedModel;
  /** Tail of this model's load/unload chain. */
  tail: Promise<void>;
  /** A pending load that a new load request joins. */
  pendingLoad?: Promise<void>;
}

/** Options of `ModelStore`. */
export interface ModelStoreOptions {
  /** Repository folder (Triton layout). */
  repository: string;
  logger: Logger;
  /** ONNX Runtime session options for every model. Default: ORT's defaults. */
  sessionOptions?: InferenceSession.SessionOptions;
}

function tensorSpecs(config: ModelConfig, tensors: TensorConfig[]): Map<string, TensorSpec> {
  return new Map(
    tensors.map((t) => [
      t.name,
      {
        config: t,
        datatype: tritonTypeToKserve(t.dataType),
        shape: batchedShape(config.maxBatchSize, t.dims),
      },
    ]),
  );
}

/** The models of a repository: load, unload, index, and the READY model for a request. */
export class ModelStore {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  /** Started ahead of the next load; owned here so two stores never share or end each other's. */
  private readonly spare = new SpareThread();

  constructor(private readonly options: ModelStoreOptions) {
    this.spare.prewarm();
  }

  /** Repository index: every model on disk or ever loaded, sorted by name. */
  async index(readyOnly = false): Promise<RepositoryIndexEntry[]> {
    const names = new Set(await listModels(this.options.repository));
    for (const [name, e] of this.entries) if (e.state) names.add(name);
    const out: RepositoryIndexEntry[] = [];
    for (const name of [...names].sort()) {
      const e = this.entries.get(name);
      if (readyOnly && e?.state !== 'READY') continue;
      if (!e?.state) {
        out.push({ name });
        continue;
      }
      const item: RepositoryIndexEntry = { name, state: e.state, reason: e.reason };
      if (e.version !== undefined) item.version = String(e.version);
      out.push(item);
    }
    return out;
  }

  /**
   * Loads a model (Triton: load or reload). A model that is READY and unchanged on disk is left
   * as is; a changed one is reloaded while the old session keeps serving.
   * @throws ModelServerError with Triton's message when the model cannot be loaded.
   */
  load(name: string): Promise<void> {
    if (this.closed) return Promise.reject(MODEL_SERVER_ERRORS.shuttingDown());
    if (!isValidModelName(name)) return Promise.reject(MODEL_SERVER_ERRORS.notInRepository(name));
    const entry = this.entry(name);
    if (entry.pendingLoad) return entry.pendingLoad;
    const p = this.chain(entry, () => this.doLoad(entry));
    entry.pendingLoad = p;
    const clear = (): void => {
      if (entry.pendingLoad === p) entry.pendingLoad = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** Unloads a model after its in-flight inferences finish. Unloading a model that is not loaded is a no-op. */
  unload(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) return Promise.resolve();
    // A load asked after this unload must run after it, not join an earlier load.
    entry.pendingLoad = undefined;
    return this.chain(entry, () => this.doUnload(entry));
  }

  /** True when the model (and version, if given) is ready for inference. */
  isReady(name: string, version?: string): boolean {
    const e = this.entries.get(name);
    return e?.state === 'READY' && (version === undefined || version === String(e.version));
  }

  /** Every READY model, by name. */
  readyModels(): LoadedModel[] {
    return [...this.entries.values()]
      .filter((e) => e.state === 'READY' && e.model)
      .map((e) => e.model!)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * The READY model (and version, if given), or Triton's error for it.
   * @throws ModelServerError unknown model, no available versions, unknown version.
   */
  model(name: string, version?: string): LoadedModel {
    const e = this.entries.get(name);
    if (!e || (!e.state && !e.pendingLoad)) throw MODEL_SERVER_ERRORS.unknownModel(name);
    if (e.state !== 'READY' || !e.model) throw MODEL_SERVER_ERRORS.noAvailableVersions(name);
    if (version !== undefined && version !== String(e.model.version)) {
      throw MODEL_SERVER_ERRORS.unknownVersion(name, version);
    }
    return e.model;
  }

  /**
   * Runs validated feeds through the model: through its dynamic batcher when the config has
   * `dynamic_batching`, else as one session run. The model is not released (unload waits) until
   * the request settles.
   * @throws ModelServerError: 400 when ONNX Runtime rejects the inputs, 500 otherwise.
   */
  async run(m: LoadedModel, item: BatchItem): Promise<BatchResult> {
    m.inFlight++;
    try {
      if (m.batcher) return await m.batcher.submit(item);
      const start = nowNs();
      const outputs = await m.execute(item.feeds, item.outputs);
      const inferNs = nowNs() - start;
      m.stats.recordExecution(Math.max(item.batch, 1), 0, inferNs, 0);
      return { outputs, queueNs: 0, inputNs: 0, inferNs, outputNs: 0 };
    } finally {
      m.inFlight--;
      if (m.inFlight === 0) m.onDrained?.();
    }
  }

  /** Unloads everything and refuses new loads. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((name) => this.unload(name).catch(() => undefined)));
    await this.spare.drop();
  }

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) {
      e = { name, reason: '', tail: Promise.resolve() };
      this.entries.set(name, e);
    }
    return e;
  }

  /** Runs `op` after the model's previous load/unload, whatever its outcome. */
  private chain(entry: Entry, op: () => Promise<void>): Promise<void> {
    const p = entry.tail.then(op);
    entry.tail = p.catch(() => undefined);
    return p;
  }

  private loadedModel(
    name: string,
    version: number,
    config: ModelConfig,
    thread: SessionThread,
    fingerprint: string,
  ): LoadedModel {
    const stats = new ModelStatistics();
    const execute: Execute = async (feeds, outputs) => {
      try {
        return await thread.run(feeds, outputs);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (err instanceof SessionRunError) throw MODEL_SERVER_ERRORS.inferenceFailed(name, reason);
        throw new ModelServerError(500, `inference failed for model '${name}': ${reason}`);
      }
    };
    const model: LoadedModel = {
      name,
      version,
      config,
      thread,
      execute,
      stats,
      inputs: tensorSpecs(config, config.input),
      outputs: tensorSpecs(config, config.output),
      fingerprint,
      inFlight: 0,
      onDrained: undefined,
    };
    // Triton ignores dynamic_batching for a model that does not batch.
    if (config.dynamicBatching && config.maxBatchSize > 0) {
      model.batcher = new DynamicBatcher({
        maxBatchSize: config.maxBatchSize,
        preferredBatchSize: config.dynamicBatching.preferredBatchSize,
        maxQueueDelayMicroseconds: config.dynamicBatching.maxQueueDelayMicroseconds,
        execute,
        onExecution: (size, inputNs, inferNs, outputNs) =>
          stats.recordExecution(size, inputNs, inferNs, outputNs),
      });
    }
    return model;
  }

  private async readModelFiles(
    name: string,
  ): Promise<{ config: ModelConfig; version: number; modelPath: string; fingerprint: string }> {
    const paths = modelPaths(this.options.repository, name);
    let text: string;
    try {
      text = await readFile(paths.configPath, 'utf8');
    } catch {
      throw MODEL_SERVER_ERRORS.notInRepository(name);
    }
    let config: ModelConfig;
    try {
      config = parseModelConfig(text);
    } catch (err) {
      if (err instanceof ModelConfigError) throw MODEL_SERVER_ERRORS.badConfig(name, err.message);
      throw err;
    }
    if (config.name && config.name !== name) {
      throw MODEL_SERVER_ERRORS.badConfig(
        name,
        `config name '${config.name}' does not match the folder name`,
      );
    }
    config.name = name;
    // Triton's default version policy: the highest numeric version folder that has a model file.
    const versions = (await readdir(paths.dir).catch(() => [] as string[]))
      .filter((v) => /^\d+$/.test(v))
      .map(Number)
      .sort((a, b) => b - a);
    for (const version of versions) {
      const modelPath = join(paths.dir, String(version), MODEL_FILE);
      const s = await stat(modelPath).catch(() => undefined);
      if (s?.isFile())
        return {
          config,
          version,
          modelPath,
          fingerprint: `${text}\0${version}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}`,
        };
    }
    throw MODEL_SERVER_ERRORS.noVersion(name);
  }

  private async doLoad(entry: Entry): Promise<void> {
    if (this.closed) throw MODEL_SERVER_ERRORS.shuttingDown();
    const { logger } = this.options;
    const name = entry.name;
    let files;
    try {
      files = await this.readModelFiles(name);
    } catch (err) {
      // A model the repository never had stays unknown (Triton: "is not found"); one that is
      // there but broken shows as UNAVAILABLE with the reason.
      const missing = (err as Error).message === MODEL_SERVER_ERRORS.notInRepository(name).message;
      if (entry.state !== 'READY' && !(missing && !entry.state)) {
        entry.state = 'UNAVAILABLE';
        entry.reason = (err as Error).message;
      }
      logger.warn({ event: 'model_load_failed', model: name, message: (err as Error).message });
      throw err;
    }
    if (entry.state === 'READY' && entry.model?.fingerprint === files.fingerprint) return;

    const started = performance.now();
    const reloading = entry.state === 'READY';
    if (!reloading) {
      entry.state = 'LOADING';
      entry.reason = '';
      entry.version = files.version;
    }
    let thread: SessionThread | undefined;
    try {
      try {
        thread = await SessionThread.open(files.modelPath, {
          sessionOptions: this.options.sessionOptions,
          spare: this.spare,
          onExit: (reason) => this.onThreadExit(entry, thread, reason),
        });
      } finally {
        // The spare was used (or the load failed): ready another for the next load.
        if (!this.closed) this.spare.prewarm();
      }
      const config = reconcileModelConfig(files.config, graphSignature(thread.signature));
      const model = this.loadedModel(name, files.version, config, thread, files.fingerprint);
      if (this.closed) throw new Error('the server is shutting down');
      const old = entry.model;
      entry.model = model;
      entry.state = 'READY';
      entry.reason = '';
      entry.version = files.version;
      const durationMs = Math.round(performance.now() - started);
      logger.info({
        event: 'model_loaded',
        model: name,
        version: files.version,
        duration_ms: durationMs,
        reload: reloading,
      });
      if (old) await this.release(old);
    } catch (err) {
      await thread?.close();
      const reason = (err as Error).message;
      const error = MODEL_SERVER_ERRORS.loadFailed(name, files.version, reason);
      if (!reloading) {
        entry.state = 'UNAVAILABLE';
        entry.reason = error.message;
      }
      logger.warn({
        event: 'model_load_failed',
        model: name,
        version: files.version,
        message: error.message,
      });
      throw error;
    }
  }

  private async doUnload(entry: Entry): Promise<void> {
    const model = entry.model;
    if (entry.state !== 'READY' || !model) return;
    const started = performance.now();
    entry.state = 'UNLOADING';
    entry.reason = '';
    await this.release(model);
    if (entry.model === model) entry.model = undefined;
    entry.state = 'UNAVAILABLE';
    entry.reason = 'unloaded';
    this.options.logger.info({
      event: 'model_unloaded',
      model: entry.name,
      version: model.version,
      duration_ms: Math.round(performance.now() - started),
    });
  }

  /** Waits for the model's in-flight inferences, then frees its session and thread. */
  private async release(model: LoadedModel): Promise<void> {
    if (model.inFlight > 0) {
      await new Promise<void>((resolve) => {
        model.onDrained = resolve;
      });
    }
    model.batcher?.close(MODEL_SERVER_ERRORS.noAvailableVersions(model.name));
    await model.thread.close();
  }

  private onThreadExit(entry: Entry, thread: SessionThread | undefined, reason: string): void {
    if (!thread || entry.model?.thread !== thread) return;
    entry.model = undefined;
    entry.state = 'UNAVAILABLE';
    entry.reason = reason;
    this.options.logger.error({ event: 'session_thread_died', model: entry.name, message: reason });
  }
}
