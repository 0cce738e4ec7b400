/** Serving exported VAEs with onnxruntime-node. */
export { OnnxVAE, type OnnxVAEMetadata, type OnnxVAEOptions, type ReconstructOptions, type SampleOptions } from './onnx_vae';
export type { MatrixInput } from './input';
export { NormalGenerator, normalDraws } from './normal';
