import { isValidModelName, modelPaths } from '@smart-routing/model-repo';
import { errorMessage, modelServerFailure, TaskError } from '../errors.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ModelMetadata, TritonClient } from '../triton-client.js';

/** What handlers learn about a loaded model, once per load. */
export interface ModelInfo {
  metadata: ModelMetadata;
  /** `max_batch_size` from the model config (0: the model takes no batch dimension of its own). */
  maxBatchSize: number;
}

/** Options of `ModelCache`. */
export interface ModelCacheOptions {
  client: TritonClient | undefined;
  /** Where `<label>/tokenizer.json` lives (MODEL_REPOSITORY). */
  modelRepository: string;
}

/**
 * Per-label model metadata and tokenizers. Entries are dropped whenever the label is loaded or
 * evicted (`invalidate`), so each load reads them once and a re-uploaded model is seen afresh.
 */
export class ModelCache {
  private readonly client: TritonClient | undefined;
  private readonly repository: string;
  private readonly info = new Map<string, Promise<ModelInfo>>();
  private readonly tokenizers = new Map<string, Promise<Tokenizer>>();

  constructor(options: ModelCacheOptions) {
    this.client = options.client;
    this.repository = options.modelRepository;
  }

  /** Forgets what is cached for `label`. */
  invalidate(label: string): void {
    this.info.delete(label);
    this.tokenizers.delete(label);
  }

  /** Metadata and batch limit of a loaded model. */
  modelInfo(label: string): Promise<ModelInfo> {
    return this.cached(this.info, label, async () => {
      const client = this.client;
      if (!client) throw new TaskError('internal', 'no model server');
      try {
        const [metadata, config] = await Promise.all([
          client.modelMetadata(label),
          client.modelConfig(label),
        ]);
        const raw = config.max_batch_size ?? config.maxBatchSize ?? 0;
        const maxBatchSize = typeof raw === 'number' && raw > 0 ? raw : Number(raw) > 0 ? Number(raw) : 0;
        return { metadata, maxBatchSize };
      } catch (err) {
        throw modelServerFailure(
          err,
          'inference_failed',
          `reading ${label}'s metadata failed: ${errorMessage(err)}`,
        );
      }
    });
  }

  /** The tokenizer beside the model: `<repository>/<label>/tokenizer.json`. */
  tokenizer(label: string): Promise<Tokenizer> {
    return this.cached(this.tokenizers, label, async () => {
      if (!isValidModelName(label))
        throw new TaskError('label_not_found', `${JSON.stringify(label)} is not a model name`);
      const file = modelPaths(this.repository, label).tokenizerPath;
      try {
        return await loadTokenizer(file);
      } catch (err) {
        // The label's fault, not the producer's: no 400; and not retried (every worker reads the same repository).
        throw new TaskError(
          'inference_failed',
          `label ${label} has no usable tokenizer for embed_texts (a problem of the model in the repository): ${errorMessage(err)}`,
          { cause: err },
        );
      }
    });
  }

  /** One promise per label; a failure is not cached, so the next task tries again. */
  private cached<T>(map: Map<string, Promise<T>>, label: string, make: () => Promise<T>): Promise<T> {
    let p = map.get(label);
    if (!p) {
      p = make();
      map.set(label, p);
      p.catch(() => {
        if (map.get(label) === p) map.delete(label);
      });
    }
    return p;
  }
}
