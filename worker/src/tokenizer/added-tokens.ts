import type { Normalizer } from './normalizers.js';
import { asObject, boolField, intField, TokenizerError } from './tokenizer-error.js';
import { isWhitespace, isWordChar } from './unicode.js';
import type { Token } from './models.js';

/** An entry of `tokenizer.json`'s `added_tokens`. */
export interface AddedToken {
  id: number;
  content: string;
  /** Match only where the token is not inside a word. */
  singleWord: boolean;
  /** Swallow whitespace on the left / right of a match. */
  lstrip: boolean;
  rstrip: boolean;
  /** Matched against the normalized text (content normalized too) instead of the raw text. */
  normalized: boolean;
  special: boolean;
}

/** A piece of input: either plain text still to tokenize, or an added token already found. */
export interface Segment {
  text: string;
  token?: Token;
  /** True when the segment starts the input. */
  first: boolean;
}

/** Reads `added_tokens`. */
export function readAddedTokens(json: unknown): AddedToken[] {
  if (json === undefined || json === null) return [];
  if (!Array.isArray(json)) throw new TokenizerError('added_tokens: expected a list');
  return json.map((raw: unknown, i) => {
    const where = `added_tokens[${i}]`;
    const obj = asObject(raw, where);
    if (typeof obj.content !== 'string' || obj.content.length === 0)
      throw new TokenizerError(`${where}.content: expected a non-empty string`);
    const id = intField(obj, 'id', undefined, where);
    if (id === undefined) throw new TokenizerError(`${where}.id: expected a non-negative integer`);
    return {
      id,
      content: obj.content,
      singleWord: boolField(obj, 'single_word', false, where),
      lstrip: boolField(obj, 'lstrip', false, where),
      rstrip: boolField(obj, 'rstrip', false, where),
      // The crate's default: special tokens are matched raw, others after normalization.
      normalized: boolField(obj, 'normalized', !boolField(obj, 'special', false, where), where),
      special: boolField(obj, 'special', false, where),
    };
  });
}

interface Pattern {
  text: string;
  token: AddedToken;
}

/**
 * Finds added tokens in text, leftmost match first and the longest one at a position, the way the
 * crate's `AddedVocabulary` does: raw-matched tokens on the input, then normalized ones on each
 * normalized remainder.
 */
export class AddedTokenSplitter {
  private readonly raw: Map<string, Pattern[]>;
  private readonly normalized: Map<string, Pattern[]>;

  constructor(tokens: AddedToken[], normalizer: Normalizer) {
    this.raw = index(tokens.filter((t) => !t.normalized).map((t) => ({ text: t.content, token: t })));
    this.normalized = index(
      tokens.filter((t) => t.normalized).map((t) => ({ text: normalizer(t.content), token: t })),
    );
  }

  /** Splits `input` and normalizes the plain pieces with `normalizer`. */
  split(input: string, normalizer: Normalizer): Segment[] {
    const out: Segment[] = [];
    for (const seg of splitWith(input, this.raw, true)) {
      if (seg.token) out.push(seg);
      else out.push(...splitWith(normalizer(seg.text), this.normalized, seg.first));
    }
    return out;
  }
}

function index(patterns: Pattern[]): Map<string, Pattern[]> {
  const map = new Map<string, Pattern[]>();
  for (const p of patterns) {
    if (p.text.length === 0) continue;
    const first = String.fromCodePoint(p.text.codePointAt(0)!);
    const list = map.get(first) ?? [];
    list.push(p);
    map.set(first, list);
  }
  // Longest first, so the first fit at a position is the longest match.
  for (const list of map.values()) list.sort((a, b) => b.text.length - a.text.length);
  return map;
}

function charBefore(s: string, i: number): string | undefined {
  if (i <= 0) return undefined;
  const cp = s.codePointAt(i - 1)!;
  // A low surrogate: step back one more unit for the whole character.
  if (cp >= 0xdc00 && cp <= 0xdfff && i >= 2) return String.fromCodePoint(s.codePointAt(i - 2)!);
  return String.fromCodePoint(cp);
}

function charAt(s: string, i: number): string | undefined {
  if (i >= s.length) return undefined;
  return String.fromCodePoint(s.codePointAt(i)!);
}

function splitWith(text: string, patterns: Map<string, Pattern[]>, startsInput: boolean): Segment[] {
  if (patterns.size === 0 || text.length === 0)
    return text.length === 0 ? [] : [{ text, first: startsInput }];
  const out: Segment[] = [];
  let plainStart = 0;
  let i = 0;
  while (i < text.length) {
    const c = charAt(text, i)!;
    const match = patterns.get(c)?.find((p) => {
      if (!text.startsWith(p.text, i)) return false;
      if (!p.token.singleWord) return true;
      const before = charBefore(text, i);
      const after = charAt(text, i + p.text.length);
      return !(before !== undefined && isWordChar(before)) && !(after !== undefined && isWordChar(after));
    });
    if (!match) {
      i += c.length;
      continue;
    }
    let start = i;
    let end = i + match.text.length;
    if (match.token.lstrip)
      while (start > plainStart && isWhitespace(charBefore(text, start)!))
        start -= charBefore(text, start)!.length;
    if (match.token.rstrip)
      while (end < text.length && isWhitespace(charAt(text, end)!)) end += charAt(text, end)!.length;
    if (start > plainStart)
      out.push({ text: text.slice(plainStart, start), first: startsInput && plainStart === 0 });
    out.push({
      text: text.slice(start, end),
      token: { id: match.token.id, value: match.token.content },
      first: startsInput && start === 0,
    });
    plainStart = end;
    i = end;
  }
  if (plainStart < text.length)
    out.push({ text: text.slice(plainStart), first: startsInput && plainStart === 0 });
  return out;
}
