import { AddedTokenSplitter, readAddedTokens } from './added-tokens.js';
import { buildModel, type Token, type TokenModel } from './models.js';
import { buildNormalizer, type Normalizer } from './normalizers.js';
import { buildPostProcessor, type PostProcessor } from './post-processors.js';
import { buildPreTokenizer, type PreTokenizer } from './pre-tokenizers.js';
import { asObject, intField, stringField, TokenizerError, type JsonObject } from './tokenizer-error.js';

/**
 * A reader of Hugging Face `tokenizer.json` files for encoding, covering what sentence-transformers
 * exports use. The pipeline, as in the `tokenizers` crate:
 *
 *   text ─ added tokens (raw) ─ normalizer ─ added tokens (normalized) ─ pre-tokenizer ─ model
 *        ─ truncation ─ post-processor (special tokens) ─ padding (batch)
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

/** One encoded text. */
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
  /** The model type (`WordPiece`, `BPE`, `WordLevel`). */
  readonly modelType: string;
  private readonly normalizer: Normalizer;
  private readonly preTokenizer: PreTokenizer;
  private readonly model: TokenModel;
  private readonly postProcessor: PostProcessor;
  private readonly added: AddedTokenSplitter;
  private readonly addedIds = new Map<string, number>();
  private readonly addedTokens = new Map<number, string>();
  private readonly truncateLeft: boolean;
  private readonly padding: Padding;

  private constructor(json: JsonObject, options: TokenizerOptions) {
    this.normalizer = buildNormalizer(json.normalizer);
    this.preTokenizer = buildPreTokenizer(json.pre_tokenizer);
    this.model = buildModel(json.model);
    this.modelType = this.model.type;
    this.postProcessor = buildPostProcessor(json.post_processor);
    const added = readAddedTokens(json.added_tokens);
    for (const t of added) {
      this.addedIds.set(t.content, t.id);
      this.addedTokens.set(t.id, t.content);
    }
    this.added = new AddedTokenSplitter(added, this.normalizer);

    const truncation = json.truncation == null ? undefined : asObject(json.truncation, 'truncation');
    this.truncateLeft =
      truncation !== undefined && stringField(truncation, 'direction', 'Right', 'truncation') === 'Left';
    this.maxLength = resolveMaxLength(options, truncation);
    if (this.maxLength <= this.postProcessor.addedTokens)
      throw new TokenizerError(
        `maxLength ${this.maxLength} leaves no room for text after ${this.postProcessor.addedTokens} special tokens`,
      );
    this.padding = this.readPadding(json.padding);
  }

  /** Builds a tokenizer from a parsed `tokenizer.json`; throws `TokenizerError` on what it cannot use. */
  static fromJSON(json: unknown, options: TokenizerOptions = {}): Tokenizer {
    return new Tokenizer(asObject(json, 'tokenizer.json'), options);
  }

  /** Id of a token (added tokens included), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.model.tokenToId(token);
  }

  /** Token of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.addedTokens.get(id) ?? this.model.idToToken(id);
  }

  /** Encodes one text: special tokens added, truncated to `maxLength`. */
  encode(text: string): Encoding {
    const tokens: Token[] = [];
    for (const seg of this.added.split(text, this.normalizer)) {
      if (seg.token) {
        tokens.push(seg.token);
        continue;
      }
      for (const piece of this.preTokenizer([{ text: seg.text, first: seg.first }]))
        tokens.push(...this.model.tokenize(piece.text));
    }
    const room = this.maxLength - this.postProcessor.addedTokens;
    const kept =
      tokens.length <= room
        ? tokens
        : this.truncateLeft
          ? tokens.slice(tokens.length - room)
          : tokens.slice(0, room);
    return this.postProcessor.process({
      ids: kept.map((t) => t.id),
      tokens: kept.map((t) => t.value),
      typeIds: kept.map(() => 0),
    });
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

  private readPadding(json: unknown): Padding {
    if (json !== undefined && json !== null) {
      const obj = asObject(json, 'padding');
      const strategy = obj.strategy;
      const fixed =
        strategy !== null && typeof strategy === 'object' && 'Fixed' in strategy
          ? Number((strategy as { Fixed: unknown }).Fixed)
          : undefined;
      return {
        id: intField(obj, 'pad_id', 0, 'padding'),
        typeId: intField(obj, 'pad_type_id', 0, 'padding'),
        left: stringField(obj, 'direction', 'Right', 'padding') === 'Left',
        multipleOf: intField(obj, 'pad_to_multiple_of', 0, 'padding'),
        fixed: fixed !== undefined && Number.isInteger(fixed) && fixed > 0 ? fixed : undefined,
      };
    }
    // No padding section: the usual pad tokens, else id 0 (attention masks hide it anyway).
    const id =
      ['[PAD]', '<pad>', '<|padding|>'].map((t) => this.tokenToId(t)).find((x) => x !== undefined) ?? 0;
    return { id, typeId: 0, left: false, multipleOf: 0, fixed: undefined };
  }
}

function resolveMaxLength(options: TokenizerOptions, truncation: JsonObject | undefined): number {
  const check = (v: number, name: string) => {
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer, got ${v}`);
    return v;
  };
  if (options.maxLength !== undefined) return check(options.maxLength, 'maxLength');
  const cap = check(options.maxLengthCap ?? DEFAULT_MAX_LENGTH, 'maxLengthCap');
  const fromFile = truncation ? intField(truncation, 'max_length', undefined, 'truncation') : undefined;
  const limit = options.maxSeqLength ?? fromFile ?? options.modelMaxLength;
  return limit !== undefined && limit > 0 ? Math.min(limit, cap) : cap;
}
