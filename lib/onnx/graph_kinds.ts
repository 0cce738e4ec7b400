/**
 * The graphs a VAE is exported as. Each one is a separate, self-contained ONNX model so a
 * server only ships (and onnxruntime only loads) the part it needs.
 *
 * - encoder:      x [batch, inputDim]              -> mean, logVar [batch, latentDim]
 * - encoder-mean: x                                -> mean (the log-variance is never computed)
 * - decoder:      z [batch, latentDim]             -> xHat [batch, inputDim]
 * - reconstruct:  x, eps [batch, latentDim]        -> xHat, with z = mean + exp(logVar / 2) * eps
 * - sample:       eps [batch, latentDim]           -> xHat (the decoder applied to prior draws)
 *
 * Noise is always an explicit `eps` input rather than a RandomNormal op, so results are
 * reproducible and the caller owns the random number generator.
 * xHat is the decoder's mean: probabilities (sigmoid of the logits) for a bernoulli model,
 * the identity output for a gaussian one.
 */
export type OnnxGraphKind = 'encoder' | 'encoder-mean' | 'decoder' | 'reconstruct' | 'sample';

export const ONNX_GRAPH_KINDS: readonly OnnxGraphKind[] = ['encoder', 'encoder-mean', 'decoder', 'reconstruct', 'sample'];

/** Names of the graph inputs and outputs; also the keys of `referenceForward` inputs and outputs. */
export type OnnxTensorName = 'x' | 'z' | 'eps' | 'mean' | 'logVar' | 'xHat';

/** Which dimension of the model a tensor's columns have. */
export type OnnxTensorWidth = 'inputDim' | 'latentDim';

export interface OnnxGraphSignature {
  inputs: readonly OnnxTensorName[];
  outputs: readonly OnnxTensorName[];
}

export const ONNX_GRAPH_SIGNATURES: Readonly<Record<OnnxGraphKind, OnnxGraphSignature>> = {
  encoder: { inputs: ['x'], outputs: ['mean', 'logVar'] },
  'encoder-mean': { inputs: ['x'], outputs: ['mean'] },
  decoder: { inputs: ['z'], outputs: ['xHat'] },
  reconstruct: { inputs: ['x', 'eps'], outputs: ['xHat'] },
  sample: { inputs: ['eps'], outputs: ['xHat'] },
};

/** Every tensor is [batch, width]; this says which model dimension the width is. */
export const ONNX_TENSOR_WIDTHS: Readonly<Record<OnnxTensorName, OnnxTensorWidth>> = {
  x: 'inputDim',
  xHat: 'inputDim',
  z: 'latentDim',
  eps: 'latentDim',
  mean: 'latentDim',
  logVar: 'latentDim',
};

/** File name used by `exportAll` and expected by `OnnxVAE.open(dir)`: `<kind>.onnx`. */
export function onnxFileName(kind: OnnxGraphKind): string {
  return `${kind}.onnx`;
}

export function isOnnxGraphKind(value: unknown): value is OnnxGraphKind {
  return typeof value === 'string' && (ONNX_GRAPH_KINDS as readonly string[]).includes(value);
}
