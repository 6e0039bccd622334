import { asObject, intField, TokenizerError, type JsonObject } from './tokenizer-error.js';

/** A single sequence's tokens, as the model and the post-processor see them. */
export interface Sequence {
  ids: number[];
  tokens: string[];
  typeIds: number[];
}

/** Adds the special tokens around one sequence (we encode single sequences only). */
export interface PostProcessor {
  /** How many tokens `process` adds, so truncation can leave room for them. */
  readonly addedTokens: number;
  process(sequence: Sequence): Sequence;
}

const IDENTITY: PostProcessor = { addedTokens: 0, process: (s) => s };

/** Builds the post-processor a `tokenizer.json` `post_processor` entry describes (null: none). */
export function buildPostProcessor(json: unknown, where = 'post_processor'): PostProcessor {
  if (json === null || json === undefined) return IDENTITY;
  const obj = asObject(json, where);
  switch (obj.type) {
    case 'BertProcessing':
    case 'RobertaProcessing': {
      // `[CLS] A [SEP]` / `<s> A </s>`, all of type 0 for a single sequence.
      const cls = tokenPair(obj.cls, `${where}.cls`);
      const sep = tokenPair(obj.sep, `${where}.sep`);
      return {
        addedTokens: 2,
        process: (s) => ({
          ids: [cls.id, ...s.ids, sep.id],
          tokens: [cls.token, ...s.tokens, sep.token],
          typeIds: [0, ...s.typeIds.map(() => 0), 0],
        }),
      };
    }
    case 'TemplateProcessing':
      return template(obj, where);
    case 'ByteLevel':
      // Only trims offsets, which we do not track.
      return IDENTITY;
    case 'Sequence': {
      const list = obj.processors;
      if (!Array.isArray(list)) throw new TokenizerError(`${where}.processors: expected a list`);
      const parts = list.map((p, i) => buildPostProcessor(p, `${where}.processors[${i}]`));
      return {
        addedTokens: parts.reduce((n, p) => n + p.addedTokens, 0),
        process: (s) => parts.reduce((acc, p) => p.process(acc), s),
      };
    }
    default:
      throw new TokenizerError(`${where}: unsupported post-processor type ${JSON.stringify(obj.type)}`);
  }
}

function tokenPair(json: unknown, where: string): { token: string; id: number } {
  if (!Array.isArray(json) || json.length !== 2 || typeof json[0] !== 'string' || typeof json[1] !== 'number')
    throw new TokenizerError(`${where}: expected ["token", id]`);
  return { token: json[0], id: json[1] };
}

type TemplatePart =
  { kind: 'special'; ids: number[]; tokens: string[]; typeId: number } | { kind: 'sequence'; typeId: number };

/** `TemplateProcessing`'s `single` template, e.g. `[CLS]:0 $A:0 [SEP]:0`. */
function template(obj: JsonObject, where: string): PostProcessor {
  const single = obj.single;
  if (!Array.isArray(single)) throw new TokenizerError(`${where}.single: expected a list`);
  const specials =
    obj.special_tokens === undefined ? {} : asObject(obj.special_tokens, `${where}.special_tokens`);
  const parts: TemplatePart[] = single.map((raw: unknown, i) => {
    const w = `${where}.single[${i}]`;
    const piece = asObject(raw, w);
    if (piece.Sequence !== undefined) {
      const seq = asObject(piece.Sequence, `${w}.Sequence`);
      return { kind: 'sequence', typeId: intField(seq, 'type_id', 0, w) };
    }
    if (piece.SpecialToken !== undefined) {
      const st = asObject(piece.SpecialToken, `${w}.SpecialToken`);
      const name = st.id;
      if (typeof name !== 'string') throw new TokenizerError(`${w}.SpecialToken.id: expected a string`);
      const def = asObject(specials[name], `${where}.special_tokens[${JSON.stringify(name)}]`);
      const ids = def.ids;
      const tokens = def.tokens;
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'number'))
        throw new TokenizerError(`${where}.special_tokens[${JSON.stringify(name)}].ids: expected numbers`);
      if (!Array.isArray(tokens) || tokens.length !== ids.length)
        throw new TokenizerError(
          `${where}.special_tokens[${JSON.stringify(name)}].tokens: expected one per id`,
        );
      return {
        kind: 'special',
        ids: ids as number[],
        tokens: tokens.map(String),
        typeId: intField(st, 'type_id', 0, w),
      };
    }
    throw new TokenizerError(`${w}: expected {"Sequence": ...} or {"SpecialToken": ...}`);
  });
  const added = parts.reduce((n, p) => n + (p.kind === 'special' ? p.ids.length : 0), 0);
  return {
    addedTokens: added,
    process: (s) => {
      const out: Sequence = { ids: [], tokens: [], typeIds: [] };
      for (const p of parts) {
        if (p.kind === 'sequence') {
          out.ids.push(...s.ids);
          out.tokens.push(...s.tokens);
          for (let i = 0; i < s.ids.length; i++) out.typeIds.push(p.typeId);
        } else {
          out.ids.push(...p.ids);
          out.tokens.push(...p.tokens);
          for (let i = 0; i < p.ids.length; i++) out.typeIds.push(p.typeId);
        }
      }
      return out;
    },
  };
}
