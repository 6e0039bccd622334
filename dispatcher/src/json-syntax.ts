/**
 * Whether a text is JSON, without building its value. `JSON.parse` of an image tensor's
 * parameters_json (150 K floats, 2.9 MB) costs ~70 ms of CPU here, nearly all of it turning digits
 * into doubles that the dispatcher only drops: it checks the text and sends it on as it came. This
 * scanner walks the same grammar (RFC 8259, as `JSON.parse` accepts it) and allocates nothing but
 * its container stack.
 *
 *   value:  object | array | string | number | true | false | null
 *   ws:     space, tab, LF, CR (nothing else, not even a BOM)
 *   string: no raw control characters (< U+0020); escapes \" \\ \/ \b \f \n \r \t \uXXXX;
 *           lone surrogates are allowed, as JSON.parse allows them
 *   number: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
 *
 * Nesting is tracked on an explicit stack, so depth is not bounded by the call stack (V8's own
 * parser is iterative too).
 */

const OBJECT = 1;
const ARRAY = 2;

/** The byte at `i`, or -1 past the end (never a byte the grammar accepts). */
function at(bytes: Uint8Array, i: number): number {
  return i < bytes.length ? bytes[i]! : -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function skipWs(text: Uint8Array, i: number): number {
  for (;;) {
    const c = at(text, i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the string that opens at `i` (a `"`), or -1. */
function scanString(text: Uint8Array, i: number): number {
  let j = i + 1;
  for (;;) {
    const c = at(text, j);
    if (c === 0x22) return j + 1;
    if (c === 0x5c) {
      const e = at(text, j + 1);
      if (e === 0x75) {
        if (
          !isHex(at(text, j + 2)) ||
          !isHex(at(text, j + 3)) ||
          !isHex(at(text, j + 4)) ||
          !isHex(at(text, j + 5))
        )
          return -1;
        j += 6;
      } else if (
        e === 0x22 ||
        e === 0x5c ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        j += 2;
      } else return -1;
    } else if (c >= 0x20) j++;
    // A control character, or the end of the text (-1).
    else return -1;
  }
}

/** The index after the number that starts at `i`, or -1. */
function scanNumber(text: Uint8Array, i: number): number {
  let j = i;
  if (at(text, j) === 0x2d) j++;
  const first = at(text, j);
  if (first === 0x30) j++;
  else if (first >= 0x31 && first <= 0x39) {
    j++;
    while (isDigit(at(text, j))) j++;
  } else return -1;
  if (at(text, j) === 0x2e) {
    j++;
    if (!isDigit(at(text, j))) return -1;
    while (isDigit(at(text, j))) j++;
  }
  const e = at(text, j);
  if (e === 0x65 || e === 0x45) {
    j++;
    const sign = at(text, j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigit(at(text, j))) return -1;
    while (isDigit(at(text, j))) j++;
  }
  return j;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function word(bytes: Uint8Array, i: number, w: readonly number[]): boolean {
  for (let k = 0; k < w.length; k++) if (at(bytes, i + k) !== w[k]) return false;
  return true;
}

/** The index after `"key" ws : ws` that starts at `i` (a member of an object), or -1. */
function scanKey(text: Uint8Array, i: number): number {
  if (at(text, i) !== 0x22) return -1;
  const end = scanString(text, i);
  if (end < 0) return -1;
  const colon = skipWs(text, end);
  if (at(text, colon) !== 0x3a) return -1;
  return skipWs(text, colon + 1);
}

/** True when `JSON.parse(text)` would succeed; nothing is built. */
export function isJsonText(json: string): boolean {
  return isJsonBytes(Buffer.from(json, 'utf8'));
}

function isJsonBytes(text: Uint8Array): boolean {
  const n = text.length;
  let stack = new Uint8Array(32);
  let depth = 0;
  let i = skipWs(text, 0);
  for (;;) {
    // A value starts at i.
    const c = at(text, i);
    let opened = 0;
    if (c === 0x7b) {
      i = skipWs(text, i + 1);
      if (at(text, i) === 0x7d) i++;
      else {
        i = scanKey(text, i);
        if (i < 0) return false;
        opened = OBJECT;
      }
    } else if (c === 0x5b) {
      i = skipWs(text, i + 1);
      if (at(text, i) === 0x5d) i++;
      else opened = ARRAY;
    } else if (c === 0x22) {
      i = scanString(text, i);
    } else if (c === 0x2d || isDigit(c)) {
      i = scanNumber(text, i);
    } else if (c === 0x74 && word(text, i, TRUE)) i += 4;
    else if (c === 0x66 && word(text, i, FALSE)) i += 5;
    else if (c === 0x6e && word(text, i, NULL)) i += 4;
    else return false;
    if (i < 0) return false;
    if (opened !== 0) {
      if (depth === stack.length) {
        const grown = new Uint8Array(stack.length * 2);
        grown.set(stack);
        stack = grown;
      }
      stack[depth++] = opened;
      continue;
    }
    // After a value: close containers, or a comma and the next member.
    for (;;) {
      i = skipWs(text, i);
      if (depth === 0) return i === n;
      const d = at(text, i);
      const top = stack[depth - 1];
      if (d === 0x2c) {
        i = skipWs(text, i + 1);
        if (top === OBJECT) {
          i = scanKey(text, i);
          if (i < 0) return false;
        }
        break;
      }
      if ((top === OBJECT && d === 0x7d) || (top === ARRAY && d === 0x5d)) {
        depth--;
        i++;
        continue;
      }
      return false;
    }
  }
}
