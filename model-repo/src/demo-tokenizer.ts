/**
 * A small WordPiece tokenizer for the demo models, in the Hugging Face `tokenizer.json` format and
 * the real BERT vocabulary layout ([PAD]=0, [unused*], [UNK]=100, [CLS]=101, [SEP]=102,
 * [MASK]=103), so the worker's tokenizer code reads it exactly as it reads a real
 * sentence-transformers export. Single characters and `##` characters make every lowercase ASCII
 * word encodable without [UNK].
 */

/** Ids of BERT's special tokens. */
export const BERT_SPECIAL_IDS = {
  '[PAD]': 0,
  '[UNK]': 100,
  '[CLS]': 101,
  '[SEP]': 102,
  '[MASK]': 103,
} as const;

const COMMON_WORDS = `the of and to in a is that for it as was with be by on not he i this are or his from at
which but have an they you were her she there one all we their has been would more if will can who
when so no what up about out do said them some time into could only other than then its also two
first new like my me any these may people over very after most see made many well way your our just
where because those through how back good make much before such use each work world still even
life here day great same year years between long should both under never know being us own last
did down while might house part again off right old take around little found place another
against think without three high few every small large come end why point help must give state
home number set need under go went came show hand head light night water air land line name word
words text texts sentence query document search model models label labels task tasks data
vector vectors embedding embeddings fast slow cat cats dog dogs car cars city cities book books
music food game games sun moon tree trees river sea bird fish red blue green black white big happy
sad love hello world weather today tomorrow morning evening computer phone network server
request response error result results test tests example value values number numbers table
learn learning machine deep neural language english open close start stop run running load
loading send sent read write written question answer good better best bad worse worst yes
`;

const SUBWORDS = [
  's',
  'es',
  'ed',
  'ing',
  'ly',
  'er',
  'ers',
  'est',
  'ness',
  'tion',
  'ment',
  'able',
  'al',
  'ful',
];

const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/**
 * A vocabulary in BERT's layout: [PAD]=0, [unused0..98], [UNK]=100, [CLS]=101, [SEP]=102,
 * [MASK]=103, then `pieces` in order from id 104 (a piece already listed keeps its first id).
 */
export function bertVocabulary(pieces: Iterable<string>): Map<string, number> {
  const tokens: string[] = ['[PAD]'];
  for (let i = 0; i < 99; i++) tokens.push(`[unused${i}]`);
  tokens.push('[UNK]', '[CLS]', '[SEP]', '[MASK]');
  const seen = new Set(tokens);
  for (const t of pieces) {
    if (!seen.has(t)) {
      seen.add(t);
      tokens.push(t);
    }
  }
  return new Map(tokens.map((t, i) => [t, i]));
}

/** The demo vocabulary: token -> id, in BERT's layout. */
export function demoVocabulary(): Map<string, number> {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const digits = '0123456789';
  return bertVocabulary([
    ...(PUNCTUATION + digits + letters),
    ...COMMON_WORDS.split(/\s+/).filter((w) => w),
    ...[...(digits + letters), ...SUBWORDS].map((s) => `##${s}`),
  ]);
}

function specialToken(id: number, content: string): object {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** `tokenizer.json` content (Hugging Face tokenizers format) for the demo vocabulary. */
export function demoTokenizerJson(vocab: Map<string, number> = demoVocabulary()): object {
  const cls = BERT_SPECIAL_IDS['[CLS]'];
  const sep = BERT_SPECIAL_IDS['[SEP]'];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(BERT_SPECIAL_IDS).map(([content, id]) => specialToken(id, content)),
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
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [cls], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [sep], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
}

/** `tokenizer_config.json` content for the demo models. */
export function demoTokenizerConfig(): object {
  return { model_max_length: 128, do_lower_case: true };
}
