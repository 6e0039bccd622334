import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TokenizerError } from '../src/tokenizer/tokenizer-error.js';

/**
 * A `tokenizer.json` laid out like bert-base-uncased's: the special tokens and every word used
 * below sit at their real bert-base-uncased ids, so expected ids read like the real model's.
 */
const BERT_IDS: Record<string, number> = {
  '[PAD]': 0,
  '[UNK]': 100,
  '[CLS]': 101,
  '[SEP]': 102,
  '[MASK]': 103,
  '!': 999,
  ',': 1010,
  '.': 1012,
  '?': 1029,
  '[': 1031,
  ']': 1033,
  a: 1037,
  the: 1996,
  is: 2003,
  this: 2023,
  my: 2026,
  world: 2088,
  another: 2178,
  track: 2650,
  example: 2742,
  dog: 3899,
  copies: 4809,
  previously: 3130,
  featuring: 3794,
  albums: 4042,
  sold: 2853,
  un: 4895,
  sentence: 6251,
  hello: 7592,
  cute: 10140,
  technically: 10892,
  perfect: 3819,
  correct: 6149,
  melodic: 17187,
  '##ally': 3973,
  '##heard': 26362,
  '124': 13412,
  '##44': 22932,
  '##32': 16703,
  '##86': 20842,
  '##53': 22275,
  '##9': 2683,
  // Not bert's ids (we do not know them for sure): free slots for the CJK and accent cases.
  中: 30000,
  国: 30001,
  cafe: 30002,
  naive: 30003,
};

function bertJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const vocab: Record<string, number> = { ...BERT_IDS };
  for (let i = 0; i < 99; i++) vocab[`[unused${i}]`] = i + 1;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      special(0, '[PAD]'),
      special(100, '[UNK]'),
      special(101, '[CLS]'),
      special(102, '[SEP]'),
      special(103, '[MASK]'),
    ],
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
    ...overrides,
  };
}

const bert = Tokenizer.fromJSON(bertJson());

/** GPT-2's byte -> printable character table (`bytes_to_unicode` in its encoder.py). */
function bytesToUnicode(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

describe('Tokenizer (WordPiece, BERT layout)', () => {
  it('encodes sentences to bert-base-uncased ids', () => {
    expect(bert.encode('Hello, world.').ids).toEqual([101, 7592, 1010, 2088, 1012, 102]);
    expect(bert.encode('Hello, world!').ids).toEqual([101, 7592, 1010, 2088, 999, 102]);
    expect(bert.encode('Hello, my dog is cute').ids).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
    expect(bert.encode('This is another example sentence.').ids).toEqual([
      101, 2023, 2003, 2178, 2742, 6251, 1012, 102,
    ]);
    expect(bert.encode('Hello, world.').tokens).toEqual(['[CLS]', 'hello', ',', 'world', '.', '[SEP]']);
    expect(bert.encode('Hello, world.').typeIds).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('splits words into ## subwords, longest match first', () => {
    const e = bert.encode('featuring a previously unheard track');
    expect(e.tokens).toEqual(['[CLS]', 'featuring', 'a', 'previously', 'un', '##heard', 'track', '[SEP]']);
    expect(e.ids).toEqual([101, 3794, 1037, 3130, 4895, 26362, 2650, 102]);
    expect(bert.encode('technically perfect, melodically correct').ids).toEqual([
      101, 10892, 3819, 1010, 17187, 3973, 6149, 102,
    ]);
    expect(bert.encode('albums sold 124443286539 copies').ids).toEqual([
      101, 4042, 2853, 13412, 22932, 16703, 20842, 22275, 2683, 4809, 102,
    ]);
  });

  it('maps a word with any unmatched part, or longer than max_input_chars_per_word, to [UNK]', () => {
    // "un" matches, but no "##hello..." piece does: the whole word is [UNK], not "un" + [UNK].
    expect(bert.encode('unhello').ids).toEqual([101, 100, 102]);
    expect(bert.encode('xyz hello').ids).toEqual([101, 100, 7592, 102]);
    const long = Tokenizer.fromJSON(
      bertJson({ model: { ...(bertJson().model as object), max_input_chars_per_word: 4 } }),
    );
    expect(long.encode('hello this').ids).toEqual([101, 100, 2023, 102]);
  });

  it('lowercases and strips accents (NFD, drop Mn) when lowercasing', () => {
    expect(bert.encode('HÉLLO, world!').ids).toEqual([101, 7592, 1010, 2088, 999, 102]);
    expect(bert.encode('Café naïve').ids).toEqual([101, 30002, 30003, 102]);
    // strip_accents false keeps the accent: "café" is not in the vocab.
    const keep = Tokenizer.fromJSON(
      bertJson({ normalizer: { type: 'BertNormalizer', lowercase: true, strip_accents: false } }),
    );
    expect(keep.encode('Café').ids).toEqual([101, 100, 102]);
  });

  it('isolates punctuation, including ASCII symbols, and drops control characters', () => {
    expect(bert.encode('hello!!?').ids).toEqual([101, 7592, 999, 999, 1029, 102]);
    expect(bert.encode('hello\u0000\u200b world\t\n').ids).toEqual([101, 7592, 2088, 102]);
    expect(bert.encode('[hello]').ids).toEqual([101, 1031, 7592, 1033, 102]);
  });

  it('puts spaces around CJK ideographs', () => {
    expect(bert.encode('hello中国world').ids).toEqual([101, 7592, 30000, 30001, 2088, 102]);
    const off = Tokenizer.fromJSON(
      bertJson({ normalizer: { type: 'BertNormalizer', handle_chinese_chars: false, lowercase: true } }),
    );
    expect(off.encode('中国').ids).toEqual([101, 100, 102]);
  });

  it('matches special added tokens in the raw text, case-sensitively', () => {
    expect(bert.encode('hello [MASK] world').ids).toEqual([101, 7592, 103, 2088, 102]);
    expect(bert.encode('hello[MASK]world').ids).toEqual([101, 7592, 103, 2088, 102]);
    // "[mask]" is not the token: it is punctuation around an unknown word.
    expect(bert.encode('[mask]').ids).toEqual([101, 1031, 100, 1033, 102]);
  });

  it('truncates to the model max length, special tokens included', () => {
    const short = Tokenizer.fromJSON(bertJson(), { maxLength: 5 });
    expect(short.encode('hello, my dog is cute').ids).toEqual([101, 7592, 1010, 2026, 102]);
    const left = Tokenizer.fromJSON(
      bertJson({ truncation: { direction: 'Left', max_length: 5, strategy: 'LongestFirst', stride: 0 } }),
    );
    expect(left.maxLength).toBe(5);
    expect(left.encode('hello, my dog is cute').ids).toEqual([101, 3899, 2003, 10140, 102]);
    expect(bert.maxLength).toBe(512);
    expect(bert.encode('hello '.repeat(2000)).ids).toHaveLength(512);
    expect(Tokenizer.fromJSON(bertJson(), { modelMaxLength: 128 }).maxLength).toBe(128);
    expect(Tokenizer.fromJSON(bertJson(), { modelMaxLength: 8192 }).maxLength).toBe(512);
    expect(() => Tokenizer.fromJSON(bertJson(), { maxLength: 2 })).toThrow(TokenizerError);
  });

  it('pads a batch with the pad id and builds the attention mask', () => {
    const batch = bert.encodeBatch(['Hello, world.', 'hello']);
    expect(batch.batchSize).toBe(2);
    expect(batch.sequenceLength).toBe(6);
    expect(batch.lengths).toEqual([6, 3]);
    expect([...batch.inputIds]).toEqual([
      101n,
      7592n,
      1010n,
      2088n,
      1012n,
      102n,
      101n,
      7592n,
      102n,
      0n,
      0n,
      0n,
    ]);
    expect([...batch.attentionMask]).toEqual([1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n, 0n, 0n]);
    expect([...batch.tokenTypeIds]).toEqual(new Array(12).fill(0n));
    expect(batch.inputIds).toBeInstanceOf(BigInt64Array);
  });

  it('honours the file padding section (pad id, left side, multiple of)', () => {
    const t = Tokenizer.fromJSON(
      bertJson({
        padding: {
          strategy: 'BatchLongest',
          direction: 'Left',
          pad_to_multiple_of: 4,
          pad_id: 103,
          pad_type_id: 0,
          pad_token: '[MASK]',
        },
      }),
    );
    const batch = t.encodeBatch(['hello', 'hello world']);
    expect(batch.sequenceLength).toBe(4);
    expect([...batch.inputIds]).toEqual([103n, 101n, 7592n, 102n, 101n, 7592n, 2088n, 102n]);
    expect([...batch.attentionMask]).toEqual([0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n]);
  });

  it('supports BertProcessing and a normalizer sequence', () => {
    const t = Tokenizer.fromJSON(
      bertJson({
        normalizer: {
          type: 'Sequence',
          normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }],
        },
        pre_tokenizer: { type: 'Whitespace' },
        post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] },
      }),
    );
    expect(t.encode('HÉLLO, world.').ids).toEqual([101, 7592, 1010, 2088, 1012, 102]);
  });
});

/**
 * A byte-level BPE (GPT-2/RoBERTa style): the 256-character byte alphabet at ids 3..258, then the
 * merged tokens. Merges by rank: 0 "h e", 1 "Ġ t", 2 "l o", 3 "lo w", 4 "e r", 5 "Ġ lo", 6 "Ġ low",
 * 7 "Ã ©" (é as bytes C3 A9), 8 "c a".
 */
function byteLevelJson(mergeForm: 'string' | 'array'): Record<string, unknown> {
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2 };
  bytesToUnicode().forEach((c, i) => (vocab[c] = 3 + i));
  const merged = ['he', 'Ġt', 'lo', 'low', 'er', 'Ġlo', 'Ġlow', 'Ã©', 'ca'];
  merged.forEach((t, i) => (vocab[t] = 259 + i));
  const merges: [string, string][] = [
    ['h', 'e'],
    ['Ġ', 't'],
    ['l', 'o'],
    ['lo', 'w'],
    ['e', 'r'],
    ['Ġ', 'lo'],
    ['Ġ', 'low'],
    ['Ã', '©'],
    ['c', 'a'],
  ];
  return {
    added_tokens: [
      {
        id: 0,
        content: '<s>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
      {
        id: 1,
        content: '<pad>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
      {
        id: 2,
        content: '</s>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'RobertaProcessing',
      sep: ['</s>', 2],
      cls: ['<s>', 0],
      trim_offsets: true,
      add_prefix_space: false,
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: mergeForm === 'string' ? merges.map(([a, b]) => `${a} ${b}`) : merges,
    },
  };
}

describe('Tokenizer (byte-level BPE)', () => {
  const byId = (t: Tokenizer, ids: number[]) => ids.map((id) => t.idToToken(id));

  for (const form of ['string', 'array'] as const) {
    it(`applies merges by rank (merges as ${form}s)`, () => {
      const t = Tokenizer.fromJSON(byteLevelJson(form));
      // "the": t h e -> (h e) rank 0 -> [t, he]; no merge for (t, he).
      // " lower": Ġ l o w e r -> lo (2) -> low (3) -> er (4) -> Ġlow (6): [Ġlow, er]. "Ġ lo" (5)
      // never applies: "lo w" (3) outranks it while both are possible.
      const e = t.encode('the lower');
      expect(e.tokens).toEqual(['<s>', 't', 'he', 'Ġlow', 'er', '</s>']);
      expect(byId(t, e.ids)).toEqual(e.tokens);
      expect(e.ids[0]).toBe(0);
      expect(e.ids.at(-1)).toBe(2);
    });
  }

  it('merges multi-byte characters as byte tokens', () => {
    const t = Tokenizer.fromJSON(byteLevelJson('array'));
    // " café": Ġ c a f Ã © -> ca (8), Ã© (7)
    expect(t.encode('the café').tokens).toEqual(['<s>', 't', 'he', 'Ġ', 'ca', 'f', 'Ã©', '</s>']);
  });

  it('adds a prefix space when asked', () => {
    const json = byteLevelJson('array');
    json.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, use_regex: true };
    const t = Tokenizer.fromJSON(json);
    expect(t.encode('the').tokens).toEqual(['<s>', 'Ġt', 'he', '</s>']);
  });

  it('pads with <pad> (id 1) when the file has no padding section', () => {
    const t = Tokenizer.fromJSON(byteLevelJson('string'));
    const batch = t.encodeBatch(['the', 'the lower']);
    expect([...batch.inputIds.slice(0, 6)]).toEqual([0n, BigInt(t.tokenToId('t')!), 259n, 2n, 1n, 1n]);
  });

  it('splits with the GPT-2 regex (contractions, numbers, runs of spaces)', () => {
    const t = Tokenizer.fromJSON(byteLevelJson('string'));
    // Unmerged pieces show the split: "'s" stays one piece of two bytes, "  x" keeps one space apart.
    expect(t.encode("it's 42  x").tokens).toEqual([
      '<s>',
      'i',
      't',
      "'",
      's',
      'Ġ',
      '4',
      '2',
      'Ġ',
      'Ġ',
      'x',
      '</s>',
    ]);
  });
});

// Expected tokens below were checked with Hugging Face's Python `tokenizers` 0.23.2 on the same JSON.
describe('Tokenizer (other components)', () => {
  it('BPE with an end-of-word suffix and unknown characters', () => {
    const t = Tokenizer.fromJSON({
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: { type: 'WhitespaceSplit' },
      model: {
        type: 'BPE',
        unk_token: '<unk>',
        continuing_subword_prefix: null,
        end_of_word_suffix: '</w>',
        fuse_unk: true,
        vocab: { '<unk>': 0, a: 1, b: 2, 'c</w>': 3, ab: 4, 'abc</w>': 5, 'a</w>': 6, 'b</w>': 7 },
        merges: ['a b', 'ab c</w>'],
      },
    });
    expect(t.encode('ABC').tokens).toEqual(['abc</w>']);
    expect(t.encode('a').tokens).toEqual(['a</w>']);
    // Two unknown characters fuse into one <unk>; "a" and "b" are no longer adjacent to merge.
    expect(t.encode('axxbc').tokens).toEqual(['a', '<unk>', 'b', 'c</w>']);
    expect(t.encode('ab b').ids).toEqual([1, 7, 7]);
  });

  for (const [scheme, ids] of [
    ['always', [1, 3, 2]],
    ['first', [1, 3, 2]],
    ['never', [4, 3, 2]],
  ] as const) {
    it(`Metaspace with prepend_scheme ${scheme} (Unigram)`, () => {
      const t = Tokenizer.fromJSON({
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: true },
        model: {
          type: 'Unigram',
          unk_id: 0,
          vocab: [
            ['<unk>', 0],
            ['▁hey', -1],
            ['▁friend!', -1],
            ['▁', -2],
            ['hey', -1.5],
          ],
        },
      });
      expect(t.encode('hey  friend!').ids).toEqual(ids);
      expect(t.modelType).toBe('Unigram');
    });
  }

  it('refuses, with a TokenizerError naming the part, what the library would get wrong or lacks', () => {
    const refused = (json: unknown, message: RegExp) => {
      let caught: unknown;
      try {
        Tokenizer.fromJSON(json);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(TokenizerError);
      expect((caught as TokenizerError).reason).toBe('invalid');
      expect((caught as Error).message).toMatch(message);
    };
    // The library has no WordLevel model: it would fall back to one that yields undefined ids.
    refused({ model: { type: 'WordLevel', unk_token: '<unk>', vocab: { '<unk>': 0 } } }, /type "WordLevel"/);
    // It ignores a BPE continuing_subword_prefix, so "abc" would not merge as Python merges it.
    refused(
      { model: { type: 'BPE', continuing_subword_prefix: '##', vocab: { a: 0 }, merges: [] } },
      /continuing_subword_prefix/,
    );
    refused(bertJson({ normalizer: { type: 'NoSuchNormalizer' } }), /NoSuchNormalizer/);
    refused(bertJson({ padding: { strategy: 'BatchLongest', pad_id: -1 } }), /padding\.pad_id/);
    refused(bertJson({ truncation: { max_length: 'long' } }), /truncation\.max_length/);
    refused({ normalizer: null }, /model: expected an object/);
    refused('nope', /expected an object/);
  });
});

describe('loadTokenizer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sr-tok-'));
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(bertJson()));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads tokenizer.json from a file or a directory', async () => {
    const a = await loadTokenizer(path.join(dir, 'tokenizer.json'));
    const b = await loadTokenizer(dir);
    expect(a.encode('Hello, world.').ids).toEqual([101, 7592, 1010, 2088, 1012, 102]);
    expect(b.maxLength).toBe(512);
  });

  it('takes the limit from tokenizer_config.json and sentence_bert_config.json', async () => {
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 128 }));
    expect((await loadTokenizer(dir)).maxLength).toBe(128);
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    expect((await loadTokenizer(dir)).maxLength).toBe(512);
    await writeFile(path.join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 256 }));
    expect((await loadTokenizer(dir)).maxLength).toBe(256);
    expect((await loadTokenizer(dir, { maxLength: 16 })).maxLength).toBe(16);
  });

  it('fails with reason "missing" when there is no tokenizer.json', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'sr-tok-empty-'));
    try {
      for (const where of [path.join(dir, 'nope.json'), empty]) {
        const err: unknown = await loadTokenizer(where).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TokenizerError);
        expect((err as TokenizerError).reason).toBe('missing');
        expect((err as Error).message).toMatch(/does not exist/);
      }
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('fails with reason "invalid" on a file that is not JSON', async () => {
    await writeFile(path.join(dir, 'broken.json'), '{"model": ');
    const err: unknown = await loadTokenizer(path.join(dir, 'broken.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect((err as TokenizerError).reason).toBe('invalid');
    expect((err as Error).message).toMatch(/not valid JSON/);
  });
});
