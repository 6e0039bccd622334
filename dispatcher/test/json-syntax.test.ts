import { describe, expect, it } from 'vitest';
import { isJsonText } from '../src/json-syntax.js';

// The oracle is V8's own JSON.parse (the parser the dispatcher used before, and the one the
// worker runs on the same text): the scanner must accept exactly what it accepts.
const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('isJsonText', () => {
  it('agrees with JSON.parse on hand-picked texts', () => {
    const texts = [
      '{"a":[1,2.5e-3,-0,true,false,null,"x\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"],"b":{}}',
      '[]',
      '{}',
      '0',
      '-1.5E+10',
      '"\\ud800"',
      '"\ud800"',
      '"é漢😀"',
      ' \t\n\r{ "a" : 1 } ',
      '{"":""}',
      '',
      ' ',
      '01',
      '-01',
      '1.',
      '.1',
      '-',
      '1e',
      '1e+',
      '+1',
      '"\\x"',
      '"\\u12"',
      '"\\u12G4"',
      'tru',
      'nul',
      'True',
      '[1,]',
      '{"a":1,}',
      '{,}',
      '[,1]',
      '"a',
      '"\t"',
      '"\u001f"',
      '1 2',
      '[1 2]',
      '{"a" 1}',
      '{1:2}',
      "{'a':1}",
      'NaN',
      'Infinity',
      '-0.0e-0',
      '\ufeff{}',
      '{}\u00a0',
      '[1]]',
      '[[1]',
      '{"a":{"b":[{"c":null}]}}',
      '['.repeat(100_000) + ']'.repeat(100_000),
      '['.repeat(100_000) + ']'.repeat(99_999),
    ];
    for (const t of texts) expect(isJsonText(t), JSON.stringify(t.slice(0, 40))).toBe(parses(t));
  });

  it('agrees with JSON.parse on 30 000 mutations of valid texts', () => {
    const seeds = [
      '{"a":[1,2.5e-3,-0,true,false,null,"x\\u00e9\\n"],"b":{}}',
      '[0.125,-3e7,{"k":"v"}]',
      '"s\\"t"',
      '[[[[{"k":[{}]}]]]]',
      JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], data: [0.1, -2.5e-8, 3] }] }),
    ];
    const pieces = ['{', '}', '[', ']', ',', ':', '"', '\\', 'u', '0', '1', '9', '.', 'e', 'E', '+', '-'];
    pieces.push(
      ' ',
      '\n',
      '\t',
      'a',
      't',
      'f',
      'n',
      'true',
      'null',
      '\u0001',
      '\u00a0',
      '\ufeff',
      '/',
      '\ud800',
    );
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let accepted = 0;
    let refused = 0;
    for (let k = 0; k < 30_000; k++) {
      let t = seeds[rand(seeds.length)]!;
      for (let edits = 1 + rand(3); edits > 0; edits--) {
        const at = rand(t.length + 1);
        const piece = pieces[rand(pieces.length)]!;
        const op = rand(3);
        t =
          op === 0
            ? t.slice(0, at) + piece + t.slice(at)
            : op === 1
              ? t.slice(0, at) + t.slice(at + 1)
              : t.slice(0, at) + piece + t.slice(at + 1);
      }
      const want = parses(t);
      if (isJsonText(t) !== want) expect.fail(`disagrees with JSON.parse (${want}) on ${JSON.stringify(t)}`);
      if (want) accepted++;
      else refused++;
    }
    // Both sides of the grammar were exercised.
    expect(accepted).toBeGreaterThan(2_000);
    expect(refused).toBeGreaterThan(2_000);
  });
});
