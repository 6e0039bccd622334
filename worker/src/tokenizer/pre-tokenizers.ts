import { bytesToUnicode } from './byte-level.js';
import { buildPattern } from './normalizers.js';
import { asObject, boolField, stringField, TokenizerError, type JsonObject } from './tokenizer-error.js';
import { isBertPunctuation, isNumeric, isWhitespace } from './unicode.js';

/** A piece of normalized text on its way to the model. */
export interface Piece {
  text: string;
  /** True when the piece starts the input (Metaspace's `prepend_scheme: "first"` needs it). */
  first: boolean;
}

/** A pre-tokenizer: pieces in, finer pieces out. */
export type PreTokenizer = (pieces: Piece[]) => Piece[];

/** How a split treats the delimiters it finds (the crate's `SplitDelimiterBehavior`). */
type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

const BEHAVIORS = new Set<string>([
  'Removed',
  'Isolated',
  'MergedWithPrevious',
  'MergedWithNext',
  'Contiguous',
]);

interface Span {
  text: string;
  match: boolean;
}

/** Builds the pre-tokenizer a `tokenizer.json` `pre_tokenizer` entry describes (null: identity). */
export function buildPreTokenizer(json: unknown, where = 'pre_tokenizer'): PreTokenizer {
  if (json === null || json === undefined) return (pieces) => pieces;
  const obj = asObject(json, where);
  switch (obj.type) {
    case 'BertPreTokenizer':
      // Whitespace goes, then each punctuation character stands alone.
      return (pieces) =>
        splitEach(
          splitEach(pieces, (t) => charSpans(t, isWhitespace), 'Removed'),
          bertPunctSpans,
          'Isolated',
        );
    case 'Whitespace':
      // The crate's regex `\w+|[^\w\s]+`, keeping the matches.
      return (pieces) => splitEach(pieces, (t) => regexSpans(t, WHITESPACE_RE, true), 'Removed');
    case 'WhitespaceSplit':
      return (pieces) => splitEach(pieces, (t) => charSpans(t, isWhitespace), 'Removed');
    case 'Punctuation': {
      const behavior = behaviorField(obj, 'Isolated', where);
      return (pieces) => splitEach(pieces, bertPunctSpans, behavior);
    }
    case 'Digits': {
      const individual = boolField(obj, 'individual_digits', false, where);
      return (pieces) =>
        splitEach(pieces, (t) => charSpans(t, isNumeric), individual ? 'Isolated' : 'Contiguous');
    }
    case 'CharDelimiterSplit': {
      const delimiter = stringField(obj, 'delimiter', ' ', where);
      return (pieces) => splitEach(pieces, (t) => charSpans(t, (c) => c === delimiter), 'Removed');
    }
    case 'Split': {
      const pattern = buildPattern(obj.pattern, `${where}.pattern`);
      const behavior = behaviorField(obj, 'Removed', where);
      const invert = boolField(obj, 'invert', false, where);
      return (pieces) => splitEach(pieces, (t) => regexSpans(t, pattern, invert), behavior);
    }
    case 'ByteLevel':
      return byteLevel(obj, where);
    case 'Metaspace':
      return metaspace(obj, where);
    case 'Sequence': {
      const list = obj.pretokenizers;
      if (!Array.isArray(list)) throw new TokenizerError(`${where}.pretokenizers: expected a list`);
      const parts = list.map((p, i) => buildPreTokenizer(p, `${where}.pretokenizers[${i}]`));
      return (pieces) => parts.reduce((acc, p) => p(acc), pieces);
    }
    default:
      throw new TokenizerError(`${where}: unsupported pre-tokenizer type ${JSON.stringify(obj.type)}`);
  }
}

// Rust regex `\w` and `\s` in Unicode mode.
const W = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const WHITESPACE_RE = new RegExp(`[${W}]+|[^${W}\\p{White_Space}]+`, 'gu');
/** GPT-2's split, as the ByteLevel pre-tokenizer uses it. */
const GPT2_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function byteLevel(obj: JsonObject, where: string): PreTokenizer {
  const addPrefixSpace = boolField(obj, 'add_prefix_space', true, where);
  const useRegex = boolField(obj, 'use_regex', true, where);
  const map = bytesToUnicode();
  const encoder = new TextEncoder();
  return (pieces) => {
    const out: Piece[] = [];
    for (const piece of pieces) {
      const text = addPrefixSpace && !piece.text.startsWith(' ') ? ` ${piece.text}` : piece.text;
      const parts = useRegex ? applyBehavior(regexSpans(text, GPT2_RE, false), 'Isolated') : [text];
      parts.forEach((part, i) => {
        let mapped = '';
        for (const byte of encoder.encode(part)) mapped += map[byte];
        out.push({ text: mapped, first: piece.first && i === 0 });
      });
    }
    return out;
  };
}

function metaspace(obj: JsonObject, where: string): PreTokenizer {
  const replacement = stringField(obj, 'replacement', '\u2581', where);
  // Newer exports say prepend_scheme; older ones add_prefix_space (true = always).
  let scheme = stringField(obj, 'prepend_scheme', undefined, where);
  if (scheme === undefined) scheme = boolField(obj, 'add_prefix_space', true, where) ? 'always' : 'never';
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never')
    throw new TokenizerError(`${where}.prepend_scheme: expected always, first or never`);
  const split = boolField(obj, 'split', true, where);
  return (pieces) => {
    const out: Piece[] = [];
    for (const piece of pieces) {
      let text = piece.text.replaceAll(' ', replacement);
      const prepend = scheme === 'always' || (scheme === 'first' && piece.first);
      if (prepend && !text.startsWith(replacement)) text = replacement + text;
      const parts = split
        ? applyBehavior(
            charSpans(text, (c) => c === replacement),
            'MergedWithNext',
          )
        : [text];
      parts.forEach((part, i) => out.push({ text: part, first: piece.first && i === 0 }));
    }
    return out;
  };
}

function behaviorField(obj: JsonObject, fallback: Behavior, where: string): Behavior {
  const v = stringField(obj, 'behavior', fallback, where);
  if (!BEHAVIORS.has(v)) throw new TokenizerError(`${where}.behavior: unsupported ${JSON.stringify(v)}`);
  return v as Behavior;
}

function splitEach(pieces: Piece[], spans: (text: string) => Span[], behavior: Behavior): Piece[] {
  const out: Piece[] = [];
  for (const piece of pieces) {
    applyBehavior(spans(piece.text), behavior).forEach((text, i) =>
      out.push({ text, first: piece.first && i === 0 }),
    );
  }
  return out;
}

function bertPunctSpans(text: string): Span[] {
  return charSpans(text, isBertPunctuation);
}

/** Every character for which `isDelim` holds is its own match; the runs between are not. */
function charSpans(text: string, isDelim: (c: string) => boolean): Span[] {
  const spans: Span[] = [];
  let run = '';
  for (const c of text) {
    if (isDelim(c)) {
      if (run) spans.push({ text: run, match: false });
      run = '';
      spans.push({ text: c, match: true });
    } else run += c;
  }
  if (run) spans.push({ text: run, match: false });
  return spans;
}

/** Regex matches and the text between them; `invert` swaps which is the delimiter. */
function regexSpans(text: string, re: RegExp, invert: boolean): Span[] {
  const spans: Span[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) continue;
    if (m.index > last) spans.push({ text: text.slice(last, m.index), match: invert });
    spans.push({ text: m[0], match: !invert });
    last = m.index + m[0].length;
  }
  if (last < text.length) spans.push({ text: text.slice(last), match: invert });
  return spans;
}

/** The crate's `NormalizedString::split` for one behaviour; empty pieces are dropped. */
function applyBehavior(spans: Span[], behavior: Behavior): string[] {
  let out: string[];
  switch (behavior) {
    case 'Removed':
      out = spans.filter((s) => !s.match).map((s) => s.text);
      break;
    case 'Isolated':
      out = spans.map((s) => s.text);
      break;
    case 'Contiguous': {
      out = [];
      let prevMatch = false;
      for (const s of spans) {
        if (s.match && prevMatch && out.length > 0) out[out.length - 1] += s.text;
        else out.push(s.text);
        prevMatch = s.match;
      }
      break;
    }
    case 'MergedWithPrevious': {
      out = [];
      let prevMatch = false;
      for (const s of spans) {
        if (s.match && !prevMatch && out.length > 0) out[out.length - 1] += s.text;
        else out.push(s.text);
        prevMatch = s.match;
      }
      break;
    }
    case 'MergedWithNext': {
      // Walk from the end: a delimiter joins the piece after it unless that one is a delimiter too.
      out = [];
      let nextMatch = false;
      for (let i = spans.length - 1; i >= 0; i--) {
        const s = spans[i]!;
        if (s.match && !nextMatch && out.length > 0) out[out.length - 1] = s.text + out[out.length - 1];
        else out.push(s.text);
        nextMatch = s.match;
      }
      out.reverse();
      break;
    }
  }
  return out.filter((t) => t.length > 0);
}
