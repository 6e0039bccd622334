import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MODEL_FILE,
  ModelConfigError,
  isValidModelName,
  listModels,
  modelPaths,
  parseModelConfig,
  tritonTypeToKserve,
  type ModelConfig,
  type TensorConfig,
} from '@smart-routing/model-repo';
import type { InferenceSession } from 'onnxruntime-node';
import type { Logger } from 'pino';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import {
  SessionRunError,
  SessionThread,
  type SessionSignature,
  type ValueSignature,
} from './session-thread.js';
import { elementCount, flattenData, fromThreadTensor, kserveToOrtType, toThreadTensor } from './tensors.js';

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

/** A KServe v2 tensor in a JSON infer response. */
export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

/** A KServe v2 JSON infer response. */
export interface InferResponseBody {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: InferOutputTensor[];
}

interface TensorSpec {
  config: TensorConfig;
  /** KServe datatype ('INT64'). */
  datatype: string;
  /** Full shape including the batch dimension (-1) when the model batches. */
  shape: number[];
}

interface LoadedModel {
  name: string;
  version: number;
  config: ModelConfig;
  thread: SessionThread;
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

function fullShape(config: ModelConfig, dims: number[]): number[] {
  return config.maxBatchSize > 0 ? [-1, ...dims] : [...dims];
}

function tensorSpecs(config: ModelConfig, tensors: TensorConfig[]): Map<string, TensorSpec> {
  return new Map(
    tensors.map((t) => [
      t.name,
      { config: t, datatype: tritonTypeToKserve(t.dataType), shape: fullShape(config, t.dims) },
    ]),
  );
}

function dimsFromOrt(config: ModelConfig, shape: (number | string)[]): number[] {
  const dims = shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
  return config.maxBatchSize > 0 ? dims.slice(1) : dims;
}

const ORT_TO_TRITON: Record<string, string> = {
  float32: 'TYPE_FP32',
  float64: 'TYPE_FP64',
  float16: 'TYPE_FP16',
  int8: 'TYPE_INT8',
  int16: 'TYPE_INT16',
  int32: 'TYPE_INT32',
  int64: 'TYPE_INT64',
  uint8: 'TYPE_UINT8',
  uint16: 'TYPE_UINT16',
  uint32: 'TYPE_UINT32',
  uint64: 'TYPE_UINT64',
  bool: 'TYPE_BOOL',
  string: 'TYPE_STRING',
};

/**
 * Checks config against the graph (as Triton's ONNX backend does) and fills in inputs/outputs the
 * config leaves out. Returns the reason it does not fit, or the completed config.
 */
function reconcile(config: ModelConfig, sig: SessionSignature): ModelConfig | string {
  const completed = { ...config };
  const side = (
    kind: 'input' | 'output',
    listed: TensorConfig[],
    graph: ValueSignature[],
  ): TensorConfig[] | string => {
    if (listed.length === 0) {
      const auto: TensorConfig[] = [];
      for (const v of graph) {
        const dataType = v.type ? ORT_TO_TRITON[v.type] : undefined;
        if (!dataType) return `${kind} '${v.name}' has unsupported type '${v.type ?? 'non-tensor'}'`;
        auto.push({ name: v.name, dataType, dims: dimsFromOrt(config, v.shape) });
      }
      return auto;
    }
    for (const t of listed) {
      const v = graph.find((g) => g.name === t.name);
      if (!v) {
        return `unexpected ${kind} '${t.name}' in the config, the model's ${kind}s are [${graph.map((g) => `'${g.name}'`).join(', ')}]`;
      }
      const graphType = v.type ? ORT_TO_TRITON[v.type] : undefined;
      if (graphType !== t.dataType) {
        return `unexpected datatype ${t.dataType} for ${kind} '${t.name}', the model expects ${graphType ?? v.type ?? 'a non-tensor'}`;
      }
      if (v.shape.length > 0) {
        const want = fullShape(config, t.dims);
        const fits =
          want.length === v.shape.length &&
          want.every(
            (d, i) => d === -1 || typeof v.shape[i] !== 'number' || v.shape[i] === d || v.shape[i] === -1,
          );
        if (!fits) {
          return `${kind} '${t.name}' dims [${want.join(',')}] (with batch) do not match the model's [${v.shape.join(',')}]`;
        }
      }
    }
    if (kind === 'input') {
      const missing = graph.filter((g) => !listed.some((t) => t.name === g.name));
      if (missing.length > 0) {
        return `the config lists ${listed.length} inputs but the model has ${graph.length}; missing [${missing.map((m) => `'${m.name}'`).join(', ')}]`;
      }
    }
    return listed;
  };
  const input = side('input', config.input, sig.inputs);
  if (typeof input === 'string') return input;
  const output = side('output', config.output, sig.outputs);
  if (typeof output === 'string') return output;
  completed.input = input;
  completed.output = output;
  return completed;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The models of a repository: load, unload, index, metadata and inference. */
export class ModelStore {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(private readonly options: ModelStoreOptions) {
    SessionThread.prewarm();
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

  /** Model metadata (`GET /v2/models/{m}`), KServe datatypes, shapes with the -1 batch dimension. */
  metadata(name: string, version?: string): object {
    const m = this.ready(name, version);
    const tensors = (specs: Map<string, TensorSpec>): object[] =>
      [...specs.values()].map((s) => ({ name: s.config.name, datatype: s.datatype, shape: s.shape }));
    return {
      name: m.name,
      versions: [String(m.version)],
      platform: m.config.platform ?? 'onnxruntime_onnx',
      inputs: tensors(m.inputs),
      outputs: tensors(m.outputs),
    };
  }

  /** The model configuration in Triton's JSON form (`GET /v2/models/{m}/config`). */
  configJson(name: string, version?: string): object {
    const m = this.ready(name, version);
    const c = m.config;
    return {
      name: m.name,
      platform: c.platform ?? 'onnxruntime_onnx',
      backend: c.backend ?? 'onnxruntime',
      version_policy: { latest: { num_versions: 1 } },
      max_batch_size: c.maxBatchSize,
      input: c.input.map((t) => ({
        name: t.name,
        data_type: t.dataType,
        format: 'FORMAT_NONE',
        dims: t.dims,
        is_shape_tensor: false,
        allow_ragged_batch: false,
        optional: false,
      })),
      output: c.output.map((t) => ({
        name: t.name,
        data_type: t.dataType,
        dims: t.dims,
        label_filename: '',
        is_shape_tensor: false,
      })),
      batch_input: [],
      batch_output: [],
      instance_group: [{ name: `${m.name}_0`, kind: 'KIND_CPU', count: 1, gpus: [] }],
      default_model_filename: MODEL_FILE,
      parameters: {},
    };
  }

  /**
   * Runs a KServe v2 JSON infer request. Everything about the body is validated before the model
   * sees it.
   * @throws ModelServerError (400) with a message naming the offending input.
   */
  async infer(name: string, version: string | undefined, body: unknown): Promise<InferResponseBody> {
    const m = this.ready(name, version);
    const bad = (msg: string): ModelServerError => MODEL_SERVER_ERRORS.badRequest(msg);
    if (!isObject(body)) throw bad('the request body must be a JSON object');
    if (body.id !== undefined && typeof body.id !== 'string') throw bad("'id' must be a string");
    if (!Array.isArray(body.inputs) || body.inputs.length === 0) {
      throw bad("Unable to parse 'inputs': the request must have a non-empty 'inputs' array");
    }
    const feeds: Record<string, ReturnType<typeof toThreadTensor>> = {};
    let batch: number | undefined;
    for (const [i, raw] of (body.inputs as unknown[]).entries()) {
      if (!isObject(raw)) throw bad(`inputs[${i}] must be an object`);
      const { name: inputName, datatype, shape, data } = raw;
      if (typeof inputName !== 'string') throw bad(`inputs[${i}] has no 'name' string`);
      if (typeof datatype !== 'string') throw bad(`input '${inputName}' has no 'datatype' string`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
        throw bad(`input '${inputName}': 'shape' must be an array of non-negative integers`);
      }
      if (isObject(raw.parameters) && raw.parameters.binary_data_size !== undefined) {
        throw bad(`input '${inputName}': binary tensor data is not supported, send JSON 'data'`);
      }
      if (!Array.isArray(data)) throw bad(`input '${inputName}': 'data' must be an array`);
      const spec = m.inputs.get(inputName);
      if (!spec) throw bad(`unexpected inference input '${inputName}' for model '${m.name}'`);
      if (feeds[inputName]) throw bad(`input '${inputName}' is given more than once`);
      if (datatype !== spec.datatype) {
        throw bad(
          `inference input '${inputName}' data-type is '${datatype}', but model '${m.name}' expects '${spec.datatype}'`,
        );
      }
      const dims = shape as number[];
      const fits = dims.length === spec.shape.length && spec.shape.every((d, j) => d === -1 || d === dims[j]);
      if (!fits) {
        throw bad(
          `unexpected shape for input '${inputName}' for model '${m.name}'. Expected [${spec.shape.join(',')}], got [${dims.join(',')}]`,
        );
      }
      if (m.config.maxBatchSize > 0) {
        const b = dims[0]!;
        if (b < 1 || b > m.config.maxBatchSize) {
          throw bad(
            `inference request batch-size must be <= ${m.config.maxBatchSize} for '${m.name}', got ${b}`,
          );
        }
        if (batch !== undefined && b !== batch) {
          throw bad(
            `input '${inputName}' batch size ${b} does not match other inputs (${batch}) for '${m.name}'`,
          );
        }
        batch = b;
      }
      const ortType = kserveToOrtType(datatype);
      if (!ortType)
        throw bad(`input '${inputName}': datatype '${datatype}' is not supported in JSON requests`);
      const flat = flattenData(data);
      const expected = elementCount(dims);
      if (flat.length !== expected) {
        throw bad(
          `unexpected number of elements for input '${inputName}' of model '${m.name}': shape [${dims.join(',')}] needs ${expected}, 'data' has ${flat.length}`,
        );
      }
      feeds[inputName] = toThreadTensor(inputName, ortType, dims, flat);
    }
    const missing = [...m.inputs.keys()].filter((n) => !feeds[n]);
    if (missing.length > 0) {
      throw bad(
        `expected ${m.inputs.size} inputs but got ${Object.keys(feeds).length} inputs for model '${m.name}'. ` +
          `Got input(s) [${Object.keys(feeds)
            .map((n) => `'${n}'`)
            .join(', ')}], but missing required input(s) ` +
          `[${missing.map((n) => `'${n}'`).join(', ')}]. Please provide all required input(s).`,
      );
    }
    let outputNames = [...m.outputs.keys()];
    if (body.outputs !== undefined) {
      if (!Array.isArray(body.outputs)) throw bad("'outputs' must be an array");
      if (body.outputs.length > 0) {
        outputNames = (body.outputs as unknown[]).map((o, i) => {
          if (!isObject(o) || typeof o.name !== 'string') throw bad(`outputs[${i}] has no 'name' string`);
          if (!m.outputs.has(o.name))
            throw bad(`unexpected inference output '${o.name}' for model '${m.name}'`);
          return o.name;
        });
        outputNames = [...new Set(outputNames)];
      }
    }

    m.inFlight++;
    try {
      const result = await m.thread.run(feeds, outputNames);
      const response: InferResponseBody = {
        model_name: m.name,
        model_version: String(m.version),
        outputs: outputNames.map((n) => ({ name: n, ...fromThreadTensor(result[n]!) })),
      };
      if (typeof body.id === 'string') response.id = body.id;
      return response;
    } catch (err) {
      if (err instanceof ModelServerError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof SessionRunError) throw MODEL_SERVER_ERRORS.inferenceFailed(m.name, reason);
      throw new ModelServerError(500, `inference failed for model '${m.name}': ${reason}`);
    } finally {
      m.inFlight--;
      if (m.inFlight === 0) m.onDrained?.();
    }
  }

  /** Unloads everything and refuses new loads. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((name) => this.unload(name).catch(() => undefined)));
    await SessionThread.dropSpare();
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

  /** The READY model, or Triton's error for it. */
  private ready(name: string, version?: string): LoadedModel {
    const e = this.entries.get(name);
    if (!e || (!e.state && !e.pendingLoad)) throw MODEL_SERVER_ERRORS.unknownModel(name);
    if (e.state !== 'READY' || !e.model) throw MODEL_SERVER_ERRORS.noAvailableVersions(name);
    if (version !== undefined && version !== String(e.model.version)) {
      throw MODEL_SERVER_ERRORS.unknownVersion(name, version);
    }
    return e.model;
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
        return { config, version, modelPath, fingerprint: `${text}\0${version}\0${s.size}\0${s.mtimeMs}` };
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
          onExit: (reason) => this.onThreadExit(entry, thread, reason),
        });
      } finally {
        // The spare was used (or the load failed): ready another for the next load.
        if (!this.closed) SessionThread.prewarm();
      }
      const config = reconcile(files.config, thread.signature);
      if (typeof config === 'string') throw new Error(config);
      const model: LoadedModel = {
        name,
        version: files.version,
        config,
        thread,
        inputs: tensorSpecs(config, config.input),
        outputs: tensorSpecs(config, config.output),
        fingerprint: files.fingerprint,
        inFlight: 0,
        onDrained: undefined,
      };
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
