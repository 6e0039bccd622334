import { UploaderError } from './errors.js';

/** Hub model ids: `name` or `owner/name`, each part letters, digits, `_`, `.`, `-`. */
const MODEL_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;
/** Git revisions: branch, tag or commit (`refs/pr/1` too). */
const REVISION = /^[\w.-]+(\/[\w.-]+)*$/;
const MAX_ID_LENGTH = 200;

/**
 * Checks a hub model id and returns it.
 * @throws UploaderError `invalid_model_id`.
 */
export function validateModelId(modelId: string): string {
  if (modelId.length > MAX_ID_LENGTH || !MODEL_ID.test(modelId) || modelId.includes('..')) {
    throw new UploaderError('invalid_model_id', `got ${JSON.stringify(modelId.slice(0, MAX_ID_LENGTH))}`);
  }
  return modelId;
}

/**
 * Checks a git revision (branch, tag, commit or `refs/pr/N`) and returns it.
 * @throws UploaderError `invalid_request`.
 */
export function validateRevision(revision: string): string {
  if (revision.length > MAX_ID_LENGTH || !REVISION.test(revision) || revision.includes('..')) {
    throw new UploaderError(
      'invalid_request',
      `revision ${JSON.stringify(revision.slice(0, MAX_ID_LENGTH))} is not valid`,
    );
  }
  return revision;
}

/**
 * The repository folder name for a model id: `/` becomes `--`
 * (`sentence-transformers/all-MiniLM-L6-v2` -> `sentence-transformers--all-MiniLM-L6-v2`), as the
 * hub's own cache does. Validates the id first.
 * @throws UploaderError `invalid_model_id`.
 */
export function modelNameFromId(modelId: string): string {
  return validateModelId(modelId).replace('/', '--');
}
