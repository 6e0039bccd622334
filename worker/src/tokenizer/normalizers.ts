import { asObject, boolField, stringField, TokenizerError, type JsonObject } from './tokenizer-error.js';
import {
  isBertControl,
  isBertWhitespace,
  isChineseChar,
  isMarkNonspacing,
  isWhitespace,
  lowercaseChars,
} from './unicode.js';

/** A normalizer: text in, normalized text out (we track no offsets: the worker needs ids only). */
export type Normalizer = (text: string) => string;

/** Builds the normalizer a `tokenizer.json` `normalizer` entry describes (null: identity). */
export function buildNormalizer(json: unknown, where = 'normalizer'): Normalizer {
  if (json === null || json === undefined) return (s) => s;
  const obj = asObject(json, where);
  const type = obj.type;
  switch (type) {
    case 'BertNormalizer':
      return bertNormalizer(obj, where);
    case 'Lowercase':
      return lowercaseChars;
    case 'StripAccents':
      // Only removes Mn marks: exports pair it with an NFD normalizer before it.
      return stripMarks;
    case 'NFD':
    case 'NFC':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(type);
    case 'Strip': {
      const left = boolField(obj, 'strip_left', true, where);
      const right = boolField(obj, 'strip_right', true, where);
      return (s) => stripWhitespace(s, left, right);
    }
    case 'Prepend': {
      const prepend = stringField(obj, 'prepend', '', where);
      return (s) => (s.length > 0 ? prepend + s : s);
    }
    case 'Replace':
      return replaceNormalizer(obj, where);
    case 'Sequence': {
      const list = obj.normalizers;
      if (!Array.isArray(list)) throw new TokenizerError(`${where}.normalizers: expected a list`);
      const parts = list.map((n, i) => buildNormalizer(n, `${where}.normalizers[${i}]`));
      return (s) => parts.reduce((acc, n) => n(acc), s);
    }
    default:
      throw new TokenizerError(`${where}: unsupported normalizer type ${JSON.stringify(type)}`);
  }
}

/**
 * BERT's normalizer, in the crate's order: clean text (drop NUL, U+FFFD and control characters,
 * every whitespace becomes ' '), space out CJK ideographs, strip accents (NFD then drop Mn; by
 * default only when lowercasing), lowercase.
 */
function bertNormalizer(obj: JsonObject, where: string): Normalizer {
  const cleanText = boolField(obj, 'clean_text', true, where);
  const handleChinese = boolField(obj, 'handle_chinese_chars', true, where);
  const lowercase = boolField(obj, 'lowercase', true, where);
  const stripAccents = boolField(obj, 'strip_accents', lowercase, where);
  return (text) => {
    let s = text;
    if (cleanText) {
      let out = '';
      for (const c of s) {
        if (c === '\u0000' || c === '\ufffd' || isBertControl(c)) continue;
        out += isBertWhitespace(c) ? ' ' : c;
      }
      s = out;
    }
    if (handleChinese) {
      let out = '';
      for (const c of s) out += isChineseChar(c) ? ` ${c} ` : c;
      s = out;
    }
    if (stripAccents) s = stripMarks(s.normalize('NFD'));
    if (lowercase) s = lowercaseChars(s);
    return s;
  };
}

function stripMarks(s: string): string {
  let out = '';
  for (const c of s) if (!isMarkNonspacing(c)) out += c;
  return out;
}

function stripWhitespace(s: string, left: boolean, right: boolean): string {
  const chars = [...s];
  let start = 0;
  let end = chars.length;
  if (left) while (start < end && isWhitespace(chars[start]!)) start++;
  if (right) while (end > start && isWhitespace(chars[end - 1]!)) end--;
  return chars.slice(start, end).join('');
}

function replaceNormalizer(obj: JsonObject, where: string): Normalizer {
  const content = stringField(obj, 'content', '', where);
  const pattern = buildPattern(obj.pattern, `${where}.pattern`);
  return (s) => s.replace(pattern, () => content);
}

/** A `{"String": "..."}` or `{"Regex": "..."}` pattern as a global regular expression. */
export function buildPattern(json: unknown, where: string): RegExp {
  const obj = asObject(json, where);
  if (typeof obj.String === 'string') return new RegExp(escapeRegExp(obj.String), 'gu');
  if (typeof obj.Regex === 'string') {
    try {
      return new RegExp(obj.Regex, 'gu');
    } catch (err) {
      throw new TokenizerError(`${where}: regex not supported here (${(err as Error).message})`);
    }
  }
  throw new TokenizerError(`${where}: expected {"String": ...} or {"Regex": ...}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
