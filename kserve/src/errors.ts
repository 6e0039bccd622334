/**
 * A KServe v2 request or response that breaks the protocol (bad JSON, a tensor whose data does not
 * fit its shape, binary sizes that do not add up). The message names the tensor and says what is
 * wrong; servers answer it as a 400 `{"error": message}`, as Triton does.
 */
export class KServeProtocolError extends Error {
  override name = 'KServeProtocolError';
}
