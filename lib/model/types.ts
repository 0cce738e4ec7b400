/** Hidden-layer activation functions. leaky_relu uses slope 0.01 for x < 0. */
export type Activation = 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid' | 'softplus';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'leaky_relu', 'tanh', 'sigmoid', 'softplus'];

/**
 * Decoder likelihood p(x|z).
 * - bernoulli: the decoder outputs logits; reconstruction loss is binary cross-entropy
 *   from logits, valid for grey levels in [0, 1]; decode() returns probabilities.
 * - gaussian: fixed unit variance; reconstruction loss is 1/2 * sum of squared errors
 *   (the constant n/2 * log(2*pi) is omitted); decode() returns means.
 */
export type Likelihood = 'bernoulli' | 'gaussian';
export const LIKELIHOODS: readonly Likelihood[] = ['bernoulli', 'gaussian'];

/** The architecture and training hyper-parameters that define a model. */
export interface VaeConfig {
  inputDim: number;
  latentDim: number;
  encoderLayers: readonly number[];
  decoderLayers: readonly number[];
  activation: Activation;
  likelihood: Likelihood;
  beta: number;
  seed: number;
}

/**
 * One dense layer y = x W + b.
 * weight is [inDim, outDim] row-major (so y[j] = sum_i x[i] * weight[i * outDim + j] + bias[j]);
 * this is ONNX Gemm with transB = 0.
 */
export interface DenseWeights {
  inDim: number;
  outDim: number;
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * All weights of a model, in order of use:
 * - encoder: hidden layers, each followed by the activation;
 * - head: [lastEncoderWidth, 2 * latentDim]; output columns 0..d-1 are the mean,
 *   d..2d-1 the log-variance;
 * - decoder: hidden layers, each followed by the activation, then the output layer
 *   to inputDim with no activation (logits for bernoulli, means for gaussian).
 */
export interface VaeWeights {
  encoder: DenseWeights[];
  head: DenseWeights;
  decoder: DenseWeights[];
}
