/** A KServe v2 tensor in a JSON infer response. */
export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

/** A KServe v2 JSON infer response. */
export interface InferResponseBody {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: InferOutputTensor[];
}
