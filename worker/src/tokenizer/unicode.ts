/**
 * Character classes as the Rust `tokenizers` crate defines them (Rust `char` methods and the
 * `unicode_categories` crate), so our splits match Hugging Face's exactly.
 */

const WHITE_SPACE = /^\p{White_Space}$/u;
const OTHER = /^\p{C}$/u; // Cc, Cf, Cs, Co, Cn
const PUNCTUATION = /^\p{P}$/u;
const MARK_NONSPACING = /^\p{Mn}$/u;
// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, join controls.
const WORD = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;

/** Rust `char::is_whitespace` (Unicode White_Space). */
export function isWhitespace(c: string): boolean {
  return WHITE_SPACE.test(c);
}

/** BERT's whitespace: tab, newline and carriage return count too (they are White_Space already). */
export function isBertWhitespace(c: string): boolean {
  return c === '\t' || c === '\n' || c === '\r' || isWhitespace(c);
}

/** BERT's control characters: any "Other" category except tab, newline and carriage return. */
export function isBertControl(c: string): boolean {
  if (c === '\t' || c === '\n' || c === '\r') return false;
  return OTHER.test(c);
}

/** Rust `char::is_ascii_punctuation`: the 32 ASCII symbols and punctuation marks. */
export function isAsciiPunctuation(c: string): boolean {
  const code = c.charCodeAt(0);
  return (
    c.length === 1 &&
    ((code >= 0x21 && code <= 0x2f) ||
      (code >= 0x3a && code <= 0x40) ||
      (code >= 0x5b && code <= 0x60) ||
      (code >= 0x7b && code <= 0x7e))
  );
}

/** BERT punctuation: ASCII punctuation (so `$`, `+`, `^` too) or any Unicode P* category. */
export function isBertPunctuation(c: string): boolean {
  return isAsciiPunctuation(c) || PUNCTUATION.test(c);
}

/** Unicode Mn (what accent stripping removes after NFD). */
export function isMarkNonspacing(c: string): boolean {
  return MARK_NONSPACING.test(c);
}

/** Rust regex `\w` in Unicode mode. */
export function isWordChar(c: string): boolean {
  return WORD.test(c);
}

/** Unicode digits (Rust `char::is_numeric` is N*, the Digits pre-tokenizer uses it). */
export function isNumeric(c: string): boolean {
  return /^\p{N}$/u.test(c);
}

/**
 * The CJK ideograph blocks BERT surrounds with spaces (not Hangul, Hiragana or Katakana, which are
 * written with spaces between words anyway).
 */
export function isChineseChar(c: string): boolean {
  const cp = c.codePointAt(0) ?? 0;
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** Lowercases code point by code point, like Rust (no context rules such as final sigma). */
export function lowercaseChars(s: string): string {
  let out = '';
  for (const c of s) out += c.toLowerCase();
  return out;
}
