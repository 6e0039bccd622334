/** Why a tokenizer could not be had: no `tokenizer.json`, or one that cannot be used. */
export type TokenizerErrorReason = 'missing' | 'invalid';

/**
 * A `tokenizer.json` that is absent (`reason: 'missing'`) or unusable (`reason: 'invalid'`:
 * malformed JSON, a component `@huggingface/tokenizers` does not implement, bad limits).
 */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
  readonly reason: TokenizerErrorReason;

  constructor(message: string, reason: TokenizerErrorReason = 'invalid', options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
