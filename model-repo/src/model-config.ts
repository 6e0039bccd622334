/**
 * Triton `config.pbtxt` (protobuf text format of `inference.ModelConfig`), reduced to the fields
 * this project uses: name, platform, backend, max_batch_size, input/output {name, data_type,
 * dims} and dynamic_batching {preferred_batch_size, max_queue_delay_microseconds}. Everything
 * else (instance_group, comments, ...) is parsed and ignored, so configs written by Triton tooling
 * or by hand read fine.
 */

/** One input or output tensor of a model config. */
export interface TensorConfig {
  name: string;
  /** Triton data type, e.g. `'TYPE_FP32'`, `'TYPE_INT64'`. */
  dataType: string;
  /** Shape without the batch dimension when `maxBatchSize > 0`; -1 for a variable dimension. */
  dims: number[];
}

/** The parts of a Triton model config the project reads and writes. */
export interface ModelConfig {
  /** Model name; '' when the file omits it (Triton then uses the folder name). */
  name: string;
  /** e.g. `'onnxruntime_onnx'`. */
  platform?: string;
  /** e.g. `'onnxruntime'`. */
  backend?: string;
  /** 0 = the model does not batch; > 0 = dims exclude a leading batch dimension. */
  maxBatchSize: number;
  input: TensorConfig[];
  output: TensorConfig[];
  /** Present when the config has a `dynamic_batching` block (Triton then batches concurrent requests). */
  dynamicBatching?: DynamicBatchingConfig;
}

/** Triton's `dynamic_batching` block, the fields the embedded server honours. */
export interface DynamicBatchingConfig {
  /** Batch sizes to run as soon as they can be formed; empty = run when max_batch_size is reached. */
  preferredBatchSize: number[];
  /** How long a request may wait for others to fill a batch, in microseconds. Triton's default 0. */
  maxQueueDelayMicroseconds: number;
}

/** Thrown for text that is not a valid config, or for unknown data types; the message names the line. */
export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

/** Triton data types (`inference.DataType`). */
export const TRITON_DATA_TYPES = [
  'TYPE_BOOL',
  'TYPE_UINT8',
  'TYPE_UINT16',
  'TYPE_UINT32',
  'TYPE_UINT64',
  'TYPE_INT8',
  'TYPE_INT16',
  'TYPE_INT32',
  'TYPE_INT64',
  'TYPE_FP16',
  'TYPE_FP32',
  'TYPE_FP64',
  'TYPE_STRING',
  'TYPE_BF16',
] as const;

const tritonTypes = new Set<string>(TRITON_DATA_TYPES);

// ONNX TensorProto.DataType number -> Triton data type.
const onnxToTriton: Record<number, string> = {
  1: 'TYPE_FP32',
  2: 'TYPE_UINT8',
  3: 'TYPE_INT8',
  4: 'TYPE_UINT16',
  5: 'TYPE_INT16',
  6: 'TYPE_INT32',
  7: 'TYPE_INT64',
  8: 'TYPE_STRING',
  9: 'TYPE_BOOL',
  10: 'TYPE_FP16',
  11: 'TYPE_FP64',
  12: 'TYPE_UINT32',
  13: 'TYPE_UINT64',
  16: 'TYPE_BF16',
};

/** Maps an ONNX element type number to a Triton data type: 1 -> 'TYPE_FP32', 7 -> 'TYPE_INT64'. */
export function onnxTypeToTriton(elemType: number): string {
  const t = onnxToTriton[elemType];
  if (!t) throw new ModelConfigError(`ONNX element type ${elemType} has no Triton data type`);
  return t;
}

/** Maps a Triton data type to its KServe v2 datatype: 'TYPE_FP32' -> 'FP32', 'TYPE_STRING' -> 'BYTES'. */
export function tritonTypeToKserve(dataType: string): string {
  if (!tritonTypes.has(dataType)) throw new ModelConfigError(`unknown Triton data type '${dataType}'`);
  return dataType === 'TYPE_STRING' ? 'BYTES' : dataType.slice('TYPE_'.length);
}

// ---------------------------------------------------------------------------------------------
// Text-format parsing: tokens -> a generic message tree -> ModelConfig.

interface Token {
  kind: 'ident' | 'number' | 'string' | 'punct';
  text: string;
  /** For strings: the unescaped value. */
  value?: string;
  line: number;
}

type Value = { kind: 'scalar'; token: Token } | { kind: 'message'; msg: Message; line: number };

interface Field {
  name: string;
  line: number;
  value: Value;
}

type Message = Field[];

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if ('{}[]<>:,;'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i;
      let value = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\n') throw new ModelConfigError(`line ${line}: unterminated string`);
        if (text[i] === '\\' && i + 1 < text.length) {
          const e = text[i + 1]!;
          const simple: Record<string, string> = {
            n: '\n',
            t: '\t',
            r: '\r',
            '\\': '\\',
            '"': '"',
            "'": "'",
          };
          value += simple[e] ?? e;
          i += 2;
        } else {
          value += text[i];
          i++;
        }
      }
      if (i >= text.length) throw new ModelConfigError(`line ${line}: unterminated string`);
      i++;
      tokens.push({ kind: 'string', text: text.slice(start, i), value, line });
    } else if (/[-+0-9.]/.test(c)) {
      const m = /^[-+]?(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?[fF]?|inf|nan)/.exec(
        text.slice(i, i + 64),
      );
      if (!m || m[0] === '' || m[0] === '-' || m[0] === '+') {
        throw new ModelConfigError(`line ${line}: unexpected character '${c}'`);
      }
      tokens.push({ kind: 'number', text: m[0], line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i, i + 256))!;
      tokens.push({ kind: 'ident', text: m[0], line });
      i += m[0].length;
    } else {
      throw new ModelConfigError(`line ${line}: unexpected character '${c}'`);
    }
  }
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private lastLine(): number {
    return this.tokens[this.tokens.length - 1]?.line ?? 1;
  }

  private next(expected: string): Token {
    const t = this.tokens[this.pos];
    if (!t)
      throw new ModelConfigError(`line ${this.lastLine()}: unexpected end of file, expected ${expected}`);
    this.pos++;
    return t;
  }

  private isPunct(text: string): boolean {
    const t = this.peek();
    return t?.kind === 'punct' && t.text === text;
  }

  /** Parses fields until `close` (or end of file when `close` is undefined). */
  parseMessage(close: string | undefined, openLine: number): Message {
    const fields: Message = [];
    for (;;) {
      const t = this.peek();
      if (!t) {
        if (close)
          throw new ModelConfigError(`line ${openLine}: '${close === '}' ? '{' : '<'}' is never closed`);
        return fields;
      }
      if (close && t.kind === 'punct' && t.text === close) {
        this.pos++;
        return fields;
      }
      if (t.kind !== 'ident')
        throw new ModelConfigError(`line ${t.line}: expected a field name, got '${t.text}'`);
      this.pos++;
      this.parseFieldValue(t, fields);
      // Field separators are optional in text format.
      if (this.isPunct(',') || this.isPunct(';')) this.pos++;
    }
  }

  private parseFieldValue(nameTok: Token, into: Message): void {
    const hasColon = this.isPunct(':');
    if (hasColon) this.pos++;
    const t = this.peek();
    if (!t) throw new ModelConfigError(`line ${nameTok.line}: field '${nameTok.text}' has no value`);
    if (t.kind === 'punct' && t.text === '[') {
      this.pos++;
      // List form: `dims: [ -1, 8 ]` or `input [ { ... }, { ... } ]`.
      if (this.isPunct(']')) {
        this.pos++;
        return;
      }
      for (;;) {
        into.push({
          name: nameTok.text,
          line: this.peek()?.line ?? nameTok.line,
          value: this.parseValue(nameTok),
        });
        const sep = this.next(`',' or ']' in the list of '${nameTok.text}'`);
        if (sep.kind === 'punct' && sep.text === ']') return;
        if (!(sep.kind === 'punct' && sep.text === ',')) {
          throw new ModelConfigError(
            `line ${sep.line}: expected ',' or ']' in the list of '${nameTok.text}', got '${sep.text}'`,
          );
        }
      }
    }
    if (!hasColon && !(t.kind === 'punct' && (t.text === '{' || t.text === '<'))) {
      throw new ModelConfigError(
        `line ${t.line}: expected ':' or '{' after '${nameTok.text}', got '${t.text}'`,
      );
    }
    into.push({ name: nameTok.text, line: nameTok.line, value: this.parseValue(nameTok) });
  }

  private parseValue(nameTok: Token): Value {
    const t = this.next(`a value for '${nameTok.text}'`);
    if (t.kind === 'punct' && (t.text === '{' || t.text === '<')) {
      return { kind: 'message', msg: this.parseMessage(t.text === '{' ? '}' : '>', t.line), line: t.line };
    }
    if (t.kind === 'punct') {
      throw new ModelConfigError(`line ${t.line}: expected a value for '${nameTok.text}', got '${t.text}'`);
    }
    // Adjacent string literals concatenate.
    if (t.kind === 'string') {
      let value = t.value ?? '';
      while (this.peek()?.kind === 'string') value += this.next('string').value ?? '';
      return { kind: 'scalar', token: { ...t, value } };
    }
    return { kind: 'scalar', token: t };
  }
}

function scalar(field: Field, what: string): Token {
  if (field.value.kind !== 'scalar') {
    throw new ModelConfigError(`line ${field.line}: '${field.name}' must be ${what}, got a message`);
  }
  return field.value.token;
}

function stringField(field: Field): string {
  const t = scalar(field, 'a string');
  if (t.kind !== 'string')
    throw new ModelConfigError(`line ${t.line}: '${field.name}' must be a quoted string`);
  return t.value ?? '';
}

function intField(field: Field): number {
  const t = scalar(field, 'an integer');
  if (t.kind !== 'number' || !/^[-+]?(?:\d+|0[xX][0-9a-fA-F]+)$/.test(t.text)) {
    throw new ModelConfigError(`line ${t.line}: '${field.name}' must be an integer, got '${t.text}'`);
  }
  const n = Number(t.text.replace(/^\+/, ''));
  if (!Number.isSafeInteger(n)) throw new ModelConfigError(`line ${t.line}: '${field.name}' is out of range`);
  return n;
}

function lastOf(msg: Message, name: string): Field | undefined {
  for (let i = msg.length - 1; i >= 0; i--) if (msg[i]!.name === name) return msg[i];
  return undefined;
}

function tensorConfig(field: Field): TensorConfig {
  if (field.value.kind !== 'message') {
    throw new ModelConfigError(`line ${field.line}: '${field.name}' must be a message { ... }`);
  }
  const msg = field.value.msg;
  const nameField = lastOf(msg, 'name');
  if (!nameField) throw new ModelConfigError(`line ${field.value.line}: ${field.name} has no name`);
  const name = stringField(nameField);
  const typeField = lastOf(msg, 'data_type');
  if (!typeField) {
    throw new ModelConfigError(`line ${field.value.line}: ${field.name} '${name}' has no data_type`);
  }
  const typeTok = scalar(typeField, 'a data type');
  const dataType = typeTok.kind === 'string' ? (typeTok.value ?? '') : typeTok.text;
  if (!tritonTypes.has(dataType)) {
    throw new ModelConfigError(
      `line ${typeTok.line}: ${field.name} '${name}' has unknown data_type '${dataType}'`,
    );
  }
  const dims = msg
    .filter((f) => f.name === 'dims')
    .map((f) => {
      const d = intField(f);
      if (d < -1) throw new ModelConfigError(`line ${f.line}: ${field.name} '${name}' has invalid dim ${d}`);
      return d;
    });
  return { name, dataType, dims };
}

function dynamicBatching(field: Field): DynamicBatchingConfig {
  if (field.value.kind !== 'message') {
    throw new ModelConfigError(`line ${field.line}: 'dynamic_batching' must be a message { ... }`);
  }
  const msg = field.value.msg;
  const preferredBatchSize = msg
    .filter((f) => f.name === 'preferred_batch_size')
    .map((f) => {
      const n = intField(f);
      if (n < 1) throw new ModelConfigError(`line ${f.line}: preferred_batch_size must be >= 1`);
      return n;
    });
  const delayField = lastOf(msg, 'max_queue_delay_microseconds');
  const maxQueueDelayMicroseconds = delayField ? intField(delayField) : 0;
  if (maxQueueDelayMicroseconds < 0) {
    throw new ModelConfigError(`line ${delayField!.line}: max_queue_delay_microseconds must be >= 0`);
  }
  return { preferredBatchSize, maxQueueDelayMicroseconds };
}

/**
 * Parses `config.pbtxt` text. Accepts comments, unknown fields, both `input [ {...}, {...} ]` and
 * repeated `input {...}`, and `dims: [ -1 ]` or repeated `dims: -1`.
 * @throws ModelConfigError with the offending line number.
 */
export function parseModelConfig(text: string): ModelConfig {
  const msg = new Parser(tokenize(text)).parseMessage(undefined, 1);
  const nameField = lastOf(msg, 'name');
  const platformField = lastOf(msg, 'platform');
  const backendField = lastOf(msg, 'backend');
  const batchField = lastOf(msg, 'max_batch_size');
  const config: ModelConfig = {
    name: nameField ? stringField(nameField) : '',
    maxBatchSize: batchField ? intField(batchField) : 0,
    input: msg.filter((f) => f.name === 'input').map(tensorConfig),
    output: msg.filter((f) => f.name === 'output').map(tensorConfig),
  };
  if (platformField) config.platform = stringField(platformField);
  const batchingField = lastOf(msg, 'dynamic_batching');
  if (batchingField) config.dynamicBatching = dynamicBatching(batchingField);
  if (backendField) config.backend = stringField(backendField);
  if (config.maxBatchSize < 0) {
    throw new ModelConfigError(`line ${batchField!.line}: max_batch_size must be >= 0`);
  }
  return config;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function formatTensors(kind: 'input' | 'output', tensors: TensorConfig[]): string[] {
  if (tensors.length === 0) return [];
  const blocks = tensors.map((t) => {
    if (!tritonTypes.has(t.dataType)) throw new ModelConfigError(`unknown Triton data type '${t.dataType}'`);
    return [
      '  {',
      `    name: ${quote(t.name)}`,
      `    data_type: ${t.dataType}`,
      `    dims: [ ${t.dims.join(', ')} ]`,
      '  }',
    ].join('\n');
  });
  return [`${kind} [`, blocks.join(',\n'), ']'];
}

/** Writes a config as `config.pbtxt` text (parses back to the same object). */
export function formatModelConfig(config: ModelConfig): string {
  const lines = [`name: ${quote(config.name)}`];
  if (config.platform !== undefined) lines.push(`platform: ${quote(config.platform)}`);
  if (config.backend !== undefined) lines.push(`backend: ${quote(config.backend)}`);
  lines.push(`max_batch_size: ${config.maxBatchSize}`);
  lines.push(...formatTensors('input', config.input), ...formatTensors('output', config.output));
  if (config.dynamicBatching) {
    const b = config.dynamicBatching;
    lines.push('dynamic_batching {');
    if (b.preferredBatchSize.length > 0)
      lines.push(`  preferred_batch_size: [ ${b.preferredBatchSize.join(', ')} ]`);
    lines.push(`  max_queue_delay_microseconds: ${b.maxQueueDelayMicroseconds}`, '}');
  }
  return lines.join('\n') + '\n';
}
