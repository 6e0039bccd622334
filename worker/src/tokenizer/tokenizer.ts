import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { TokenizerError } from './tokenizer-error.js';

/**
 * Model inputs from a Hugging Face `tokenizer.json`. Hugging Face's own `@huggingface/tokenizers`
 * does the encoding (normalizers, pre-tokenizers, WordPiece / BPE / Unigram, special tokens); this
 * class adds what that library leaves to its callers and `embed_texts` needs, as the Rust
 * `tokenizers` crate does it:
 *
 *   text ─ library: added tokens, normalizer, pre-tokenizer, model ─ truncation (here, before the
 *        special tokens, so [SEP] / </s> survive) ─ library: post-processor ─ padding (here, batch)
 */

/** Options of `Tokenizer.fromJSON` and `loadTokenizer`. */
export interface TokenizerOptions {
  /** Longest sequence in tokens, special tokens included. Overrides every limit read from files. */
  maxLength?: number;
  /** sentence-transformers' `max_seq_length` (`sentence_bert_config.json`): wins over the file's truncation, as in sentence-transformers. */
  maxSeqLength?: number;
  /** `model_max_length` (`tokenizer_config.json`): used when `tokenizer.json` has no truncation. */
  modelMaxLength?: number;
  /** Upper bound for a limit read from files (they often say 1e30 for "none"). Default 512. */
  maxLengthCap?: number;
}

/** One encoded text, special tokens included. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  typeIds: number[];
}

/** A padded batch, ready to be model inputs of shape [batchSize, sequenceLength]. */
export interface BatchEncoding {
  batchSize: number;
  sequenceLength: number;
  inputIds: BigInt64Array;
  /** 1 for a real token, 0 for padding. */
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  /** Real (unpadded) length of each row. */
  lengths: number[];
}

/** Default cap of the sequence length read from files. */
export const DEFAULT_MAX_LENGTH = 512;

// The two sections of tokenizer.json the library ignores; fields as the Rust crate writes them.
const count = z.number().int().nonnegative();
const truncationSchema = z.looseObject({
  max_length: count.nullish(),
  direction: z.enum(['Left', 'Right']).nullish(),
});
const paddingSchema = z.looseObject({
  strategy: z.union([z.literal('BatchLongest'), z.object({ Fixed: count })]).nullish(),
  direction: z.enum(['Left', 'Right']).nullish(),
  pad_to_multiple_of: count.nullish(),
  pad_id: count.nullish(),
  pad_type_id: count.nullish(),
});

const SUPPORTED_MODELS = new Set(['WordPiece', 'BPE', 'Unigram']);

// The Rust crate reads a file without these as "none"; the library insists on seeing them.
const OPTIONAL_SECTIONS = {
  added_tokens: [],
  normalizer: null,
  pre_tokenizer: null,
  post_processor: null,
  decoder: null,
};

interface Padding {
  id: number;
  typeId: number;
  left: boolean;
  multipleOf: number;
  fixed: number | undefined;
}

/** An encoder built from one `tokenizer.json`. Immutable after construction. */
export class Tokenizer {
  /** Longest sequence produced, special tokens included. */
  readonly maxLength: number;
  /** The model type: `WordPiece`, `BPE` or `Unigram`. */
  readonly modelType: string;
  private readonly hf: HfTokenizer;
  /** Special tokens the post-processor adds to one sequence ([CLS] + [SEP]: 2). */
  private readonly specialCount: number;
  private readonly unkId: number | undefined;
  private readonly truncateLeft: boolean;
  private readonly padding: Padding;

  private constructor(json: Record<string, unknown>, options: TokenizerOptions) {
    this.modelType = checkModel(json.model);
    try {
      // No tokenizer_config.json: the Rust crate (and so transformers' fast tokenizers and
      // sentence-transformers) encodes from tokenizer.json alone; the config only feeds the
      // library's emulation of slow tokenizers.
      this.hf = new HfTokenizer({ ...OPTIONAL_SECTIONS, ...json }, {});
    } catch (err) {
      throw new TokenizerError(`tokenizer.json: ${(err as Error).message}`, 'invalid', { cause: err });
    }
    this.unkId = this.hf.model?.unk_token_id ?? undefined;
    this.specialCount = this.hf.post_processor?.post_process([], null, true).tokens.length ?? 0;

    const truncation = parseSection(truncationSchema, json.truncation, 'truncation');
    this.truncateLeft = truncation?.direction === 'Left';
    this.maxLength = resolveMaxLength(options, truncation?.max_length ?? undefined);
    if (this.maxLength <= this.specialCount)
      throw new TokenizerError(
        `maxLength ${this.maxLength} leaves no room for text after ${this.specialCount} special tokens`,
      );
    this.padding = this.readPadding(parseSection(paddingSchema, json.padding, 'padding'));
  }

  /** Builds a tokenizer from a parsed `tokenizer.json`; throws `TokenizerError` on what it cannot use. */
  static fromJSON(json: unknown, options: TokenizerOptions = {}): Tokenizer {
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new TokenizerError('tokenizer.json: expected an object');
    return new Tokenizer(json as Record<string, unknown>, options);
  }

  /** Id of a token (added tokens included), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Token of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Encodes one text: special tokens added, truncated to `maxLength`. */
  encode(text: string): Encoding {
    const content = this.hf.encode(text, { add_special_tokens: false });
    const room = this.maxLength - this.specialCount;
    let { tokens, ids } = content;
    if (tokens.length > room) {
      const from = this.truncateLeft ? tokens.length - room : 0;
      tokens = tokens.slice(from, from + room);
      ids = ids.slice(from, from + room);
    }
    const post = this.hf.post_processor?.post_process(tokens, null, true);
    if (!post) return { ids, tokens, typeIds: ids.map(() => 0) };
    return {
      // The library maps the post-processed strings back to ids the same way in its own encode().
      ids: post.tokens.map((t: string) => this.hf.token_to_id(t) ?? this.unkId ?? 0),
      tokens: post.tokens,
      typeIds: post.token_type_ids ?? post.tokens.map(() => 0),
    };
  }

  /** Encodes texts and pads them to the longest (or the file's fixed length) with the pad id. */
  encodeBatch(texts: readonly string[]): BatchEncoding {
    const encodings = texts.map((t) => this.encode(t));
    const longest = encodings.reduce((n, e) => Math.max(n, e.ids.length), 0);
    let seq = this.padding.fixed !== undefined ? Math.max(this.padding.fixed, longest) : longest;
    if (this.padding.multipleOf > 1) seq = Math.ceil(seq / this.padding.multipleOf) * this.padding.multipleOf;
    const n = encodings.length;
    const inputIds = new BigInt64Array(n * seq).fill(BigInt(this.padding.id));
    const attentionMask = new BigInt64Array(n * seq);
    const tokenTypeIds = new BigInt64Array(n * seq).fill(BigInt(this.padding.typeId));
    encodings.forEach((e, row) => {
      const offset = row * seq + (this.padding.left ? seq - e.ids.length : 0);
      for (let i = 0; i < e.ids.length; i++) {
        inputIds[offset + i] = BigInt(e.ids[i]!);
        attentionMask[offset + i] = 1n;
        tokenTypeIds[offset + i] = BigInt(e.typeIds[i]!);
      }
    });
    return {
      batchSize: n,
      sequenceLength: seq,
      inputIds,
      attentionMask,
      tokenTypeIds,
      lengths: encodings.map((e) => e.ids.length),
    };
  }

  private readPadding(section: z.infer<typeof paddingSchema> | undefined): Padding {
    if (section) {
      const strategy = section.strategy;
      return {
        id: section.pad_id ?? 0,
        typeId: section.pad_type_id ?? 0,
        left: section.direction === 'Left',
        multipleOf: section.pad_to_multiple_of ?? 0,
        fixed: typeof strategy === 'object' && strategy && strategy.Fixed > 0 ? strategy.Fixed : undefined,
      };
    }
    // No padding section: the usual pad tokens, else id 0 (attention masks hide it anyway).
    const id =
      ['[PAD]', '<pad>', '<|padding|>'].map((t) => this.tokenToId(t)).find((x) => x !== undefined) ?? 0;
    return { id, typeId: 0, left: false, multipleOf: 0, fixed: undefined };
  }
}

/**
 * The model's type, refusing what the library would encode wrongly rather than fail: a model type
 * it lacks (it falls back to a "Legacy" model that yields undefined ids, e.g. for WordLevel) and
 * BPE with a `continuing_subword_prefix`, which it ignores (checked against Python `tokenizers`).
 * Older files carry no `type`: it is inferred from the fields, as both the crate and the library do.
 */
function checkModel(model: unknown): string {
  if (typeof model !== 'object' || model === null || Array.isArray(model))
    throw new TokenizerError('tokenizer.json model: expected an object');
  const m = model as Record<string, unknown>;
  const type =
    typeof m.type === 'string'
      ? m.type
      : Array.isArray(m.vocab)
        ? 'Unigram'
        : 'merges' in m
          ? 'BPE'
          : 'continuing_subword_prefix' in m
            ? 'WordPiece'
            : 'WordLevel';
  if (!SUPPORTED_MODELS.has(type))
    throw new TokenizerError(
      `tokenizer.json model: type "${type}" is not supported (supported: ${[...SUPPORTED_MODELS].join(', ')})`,
    );
  const prefix = m.continuing_subword_prefix;
  if (type === 'BPE' && typeof prefix === 'string' && prefix !== '')
    throw new TokenizerError(
      'tokenizer.json model: BPE with a continuing_subword_prefix is not supported by @huggingface/tokenizers',
    );
  return type;
}

/** A `truncation` / `padding` section: null and absent mean "none"; anything malformed is refused. */
function parseSection<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> | undefined {
  if (value === undefined || value === null) return undefined;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = [where, ...issue.path.map(String)].join('.');
    throw new TokenizerError(`tokenizer.json ${field}: ${issue.message}`);
  }
  return parsed.data;
}

function resolveMaxLength(options: TokenizerOptions, fromFile: number | undefined): number {
  const check = (v: number, name: string) => {
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer, got ${v}`);
    return v;
  };
  if (options.maxLength !== undefined) return check(options.maxLength, 'maxLength');
  const cap = check(options.maxLengthCap ?? DEFAULT_MAX_LENGTH, 'maxLengthCap');
  const limit = options.maxSeqLength ?? fromFile ?? options.modelMaxLength;
  return limit !== undefined && limit > 0 ? Math.min(limit, cap) : cap;
}
