import {
  asObject,
  boolField,
  intField,
  stringField,
  TokenizerError,
  type JsonObject,
} from './tokenizer-error.js';

/** One token out of the model. */
export interface Token {
  id: number;
  value: string;
}

/** The model step: one pre-tokenized word in, its tokens out. */
export interface TokenModel {
  readonly type: string;
  tokenize(word: string): Token[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** Builds the model a `tokenizer.json` `model` entry describes. */
export function buildModel(json: unknown, where = 'model'): TokenModel {
  const obj = asObject(json, where);
  // Very old exports leave out the type; a `merges` field then means BPE.
  const type =
    obj.type ?? (obj.merges !== undefined ? 'BPE' : obj.continuing_subword_prefix ? 'WordPiece' : undefined);
  switch (type) {
    case 'WordPiece':
      return new WordPiece(obj, where);
    case 'BPE':
      return new Bpe(obj, where);
    case 'WordLevel':
      return new WordLevel(obj, where);
    default:
      throw new TokenizerError(`${where}: unsupported model type ${JSON.stringify(type)}`);
  }
}

function readVocab(obj: JsonObject, where: string): Map<string, number> {
  const vocab = asObject(obj.vocab, `${where}.vocab`);
  const map = new Map<string, number>();
  for (const [token, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new TokenizerError(
        `${where}.vocab[${JSON.stringify(token)}]: expected a non-negative integer id`,
      );
    map.set(token, id);
  }
  return map;
}

function reverse(vocab: Map<string, number>): Map<number, string> {
  const r = new Map<number, string>();
  for (const [token, id] of vocab) r.set(id, token);
  return r;
}

abstract class VocabModel implements TokenModel {
  abstract readonly type: string;
  protected readonly vocab: Map<string, number>;
  protected readonly vocabR: Map<number, string>;

  constructor(obj: JsonObject, where: string) {
    this.vocab = readVocab(obj, where);
    this.vocabR = reverse(this.vocab);
  }

  abstract tokenize(word: string): Token[];

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocabR.get(id);
  }
}

/**
 * WordPiece (BERT): greedy longest-match-first from the start of the word; every piece after the
 * first carries the continuing prefix (`##`). A word longer than `max_input_chars_per_word`
 * characters, or one with any part not in the vocabulary, becomes the single unknown token.
 */
export class WordPiece extends VocabModel {
  readonly type = 'WordPiece';
  private readonly unk: Token;
  private readonly prefix: string;
  private readonly maxChars: number;

  constructor(obj: JsonObject, where: string) {
    super(obj, where);
    const unkToken = stringField(obj, 'unk_token', '[UNK]', where);
    const unkId = this.vocab.get(unkToken);
    if (unkId === undefined)
      throw new TokenizerError(`${where}: unk_token ${JSON.stringify(unkToken)} is not in the vocab`);
    this.unk = { id: unkId, value: unkToken };
    this.prefix = stringField(obj, 'continuing_subword_prefix', '##', where);
    this.maxChars = intField(obj, 'max_input_chars_per_word', 100, where);
  }

  tokenize(word: string): Token[] {
    const chars = [...word];
    if (chars.length > this.maxChars) return [this.unk];
    const out: Token[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: Token | undefined;
      while (start < end) {
        let sub = chars.slice(start, end).join('');
        if (start > 0) sub = this.prefix + sub;
        const id = this.vocab.get(sub);
        if (id !== undefined) {
          found = { id, value: sub };
          break;
        }
        end--;
      }
      if (!found) return [this.unk];
      out.push(found);
      start = end;
    }
    return out;
  }
}

/** WordLevel: the whole word or the unknown token. */
export class WordLevel extends VocabModel {
  readonly type = 'WordLevel';
  private readonly unk: Token | undefined;

  constructor(obj: JsonObject, where: string) {
    super(obj, where);
    const unkToken = stringField(obj, 'unk_token', undefined, where);
    const unkId = unkToken === undefined ? undefined : this.vocab.get(unkToken);
    this.unk = unkToken !== undefined && unkId !== undefined ? { id: unkId, value: unkToken } : undefined;
  }

  tokenize(word: string): Token[] {
    const id = this.vocab.get(word);
    if (id !== undefined) return [{ id, value: word }];
    if (!this.unk)
      throw new TokenizerError(
        `WordLevel: ${JSON.stringify(word)} is not in the vocab and there is no unk_token`,
      );
    return [this.unk];
  }
}

interface Merge {
  rank: number;
  id: number;
  value: string;
}

/**
 * Byte-pair encoding: the word starts as characters (the continuing prefix on all but the first,
 * the end-of-word suffix on the last), then the adjacent pair with the lowest merge rank is merged,
 * leftmost first on ties, until no pair has a merge. Characters outside the vocabulary become
 * `<0xXX>` byte tokens (`byte_fallback`), else the unknown token (consecutive ones fused with
 * `fuse_unk`), else they are dropped, as the crate does.
 */
export class Bpe extends VocabModel {
  readonly type = 'BPE';
  private readonly merges = new Map<string, Merge>();
  private readonly unkToken: string | undefined;
  private readonly prefix: string;
  private readonly suffix: string;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, Token[]>();

  constructor(obj: JsonObject, where: string) {
    super(obj, where);
    this.unkToken = stringField(obj, 'unk_token', undefined, where);
    this.prefix = stringField(obj, 'continuing_subword_prefix', '', where);
    this.suffix = stringField(obj, 'end_of_word_suffix', '', where);
    this.fuseUnk = boolField(obj, 'fuse_unk', false, where);
    this.byteFallback = boolField(obj, 'byte_fallback', false, where);
    this.ignoreMerges = boolField(obj, 'ignore_merges', false, where);
    const merges = obj.merges ?? [];
    if (!Array.isArray(merges)) throw new TokenizerError(`${where}.merges: expected a list`);
    merges.forEach((m: unknown, rank) => {
      const [a, b] = parseMerge(m, `${where}.merges[${rank}]`);
      const value = a + b.slice(this.prefix.length);
      const id = this.vocab.get(value);
      if (this.vocab.get(a) === undefined || this.vocab.get(b) === undefined || id === undefined)
        throw new TokenizerError(
          `${where}.merges[${rank}]: ${JSON.stringify(`${a} ${b}`)} uses a token not in the vocab`,
        );
      const key = pairKey(a, b);
      // A duplicated pair keeps its last rank: the crate collects the merges into a map in order.
      this.merges.set(key, { rank, id, value });
    });
  }

  tokenize(word: string): Token[] {
    if (word.length === 0) return [];
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return [{ id, value: word }];
    }
    const cached = this.cache.get(word);
    if (cached) return cached;
    const tokens = this.merge(this.initialSymbols(word));
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(word, tokens);
    return tokens;
  }

  private initialSymbols(word: string): Token[] {
    const chars = [...word];
    const symbols: Token[] = [];
    let unk: Token | undefined;
    chars.forEach((c, i) => {
      let s = c;
      if (i > 0) s = this.prefix + s;
      if (i === chars.length - 1) s = s + this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (unk) symbols.push(unk);
        unk = undefined;
        symbols.push({ id, value: s });
        return;
      }
      if (this.byteFallback) {
        const bytes = [...new TextEncoder().encode(s)].map(
          (b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
        );
        const ids = bytes.map((b) => this.vocab.get(b));
        if (ids.every((x) => x !== undefined)) {
          // The crate leaves a pending unknown token in place here and emits it later.
          bytes.forEach((b, j) => symbols.push({ id: ids[j]!, value: b }));
          return;
        }
      }
      if (this.unkToken === undefined) return;
      const unkId = this.vocab.get(this.unkToken);
      if (unkId === undefined)
        throw new TokenizerError(`BPE: unk_token ${JSON.stringify(this.unkToken)} is not in the vocab`);
      if (unk && this.fuseUnk) return;
      if (unk) symbols.push(unk);
      unk = { id: unkId, value: this.unkToken };
    });
    if (unk) symbols.push(unk);
    return symbols;
  }

  private merge(symbols: Token[]): Token[] {
    for (;;) {
      let best: Merge | undefined;
      let at = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const m = this.merges.get(pairKey(symbols[i]!.value, symbols[i + 1]!.value));
        if (m && (!best || m.rank < best.rank)) {
          best = m;
          at = i;
        }
      }
      if (!best) return symbols;
      symbols.splice(at, 2, { id: best.id, value: best.value });
    }
  }
}

function pairKey(a: string, b: string): string {
  return `${a}\u0000${b}`;
}

/** A merge as `"a b"` (older exports) or `["a", "b"]` (newer ones, which allow spaces in tokens). */
function parseMerge(m: unknown, where: string): [string, string] {
  if (typeof m === 'string') {
    const parts = m.split(' ');
    if (parts.length !== 2) throw new TokenizerError(`${where}: expected "a b", got ${JSON.stringify(m)}`);
    return [parts[0]!, parts[1]!];
  }
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
    return [m[0], m[1]];
  throw new TokenizerError(`${where}: expected "a b" or ["a", "b"]`);
}
