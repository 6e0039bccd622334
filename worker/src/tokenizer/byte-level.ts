let table: string[] | undefined;

/**
 * GPT-2's byte-to-character table: printable bytes (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to
 * themselves, the other 68 to U+0100 upwards in byte order, so every byte is a visible character
 * and a byte-level BPE vocabulary never needs an unknown token. (Space becomes `Ġ`, newline `Ċ`.)
 */
export function bytesToUnicode(): readonly string[] {
  if (table) return table;
  const map = new Array<string>(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  table = map;
  return map;
}
