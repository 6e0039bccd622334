import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * What a label takes, as the dispatcher's memory-aware placement counts it: the size of its files
 * in the model repository (`<repository>/<label>/`, every version, config and tokenizer included).
 * A lower bound of the memory the model server uses for it, and the same number on every worker.
 */
export async function modelFootprintBytes(repository: string, label: string): Promise<number> {
  const dir = path.join(repository, label);
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}
