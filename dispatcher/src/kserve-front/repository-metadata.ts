import { readFile, readdir } from 'node:fs/promises';
import {
  batchedShape,
  modelPaths,
  parseModelConfig,
  tritonTypeToKserve,
  type TensorConfig,
} from '@smart-routing/model-repo';

/** KServe v2 model metadata (`GET /v2/models/{m}`), the fields Triton prints, in its order. */
export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
}

/**
 * Model metadata answered from the repository's `config.pbtxt` alone (no worker asked, no ONNX
 * graph read: a model file can be hundreds of MB). Undefined when the repository has no such model,
 * or its config does not list every input and output (Triton would complete it from the graph; a
 * holder's model server then answers instead), or the config cannot be read.
 */
export async function repositoryMetadata(
  repository: string,
  model: string,
): Promise<ModelMetadata | undefined> {
  let paths: ReturnType<typeof modelPaths>;
  try {
    paths = modelPaths(repository, model);
  } catch {
    return undefined;
  }
  try {
    const config = parseModelConfig(await readFile(paths.configPath, 'utf8'));
    if (config.input.length === 0 || config.output.length === 0) return undefined;
    const tensor = (t: TensorConfig) => ({
      name: t.name,
      datatype: tritonTypeToKserve(t.dataType),
      shape: batchedShape(config.maxBatchSize, t.dims),
    });
    const entries = await readdir(paths.dir, { withFileTypes: true });
    const versions = entries
      .filter((e) => e.isDirectory() && /^[1-9]\d*$/.test(e.name))
      .map((e) => e.name)
      .sort((a, b) => Number(a) - Number(b));
    return {
      name: model,
      versions: versions.length > 0 ? versions : ['1'],
      platform: config.platform ?? 'onnxruntime_onnx',
      inputs: config.input.map(tensor),
      outputs: config.output.map(tensor),
    };
  } catch {
    return undefined;
  }
}
