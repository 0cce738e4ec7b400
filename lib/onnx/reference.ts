import { invalidArgument } from '../errors';
import type { Activation, DenseWeights, VaeConfig, VaeWeights } from '../model/types';
import { ONNX_GRAPH_SIGNATURES, ONNX_TENSOR_WIDTHS, type OnnxGraphKind } from './graph_kinds';

export type ReferenceInputs = Partial<Record<'x' | 'z' | 'eps', Float32Array | Float64Array>>;
export type ReferenceOutputs = Partial<Record<'mean' | 'logVar' | 'xHat', Float64Array>>;

/**
 * A plain TypeScript forward pass of one exported graph, accumulating in float64.
 * It is the independent oracle for the ONNX export: it reads the weights directly (the
 * whole head, split afterwards) and shares no code with the graph builder. Inputs and
 * outputs are row-major [rows, width] and named as in the ONNX graph.
 */
export function referenceForward(
  config: VaeConfig,
  weights: VaeWeights,
  graph: OnnxGraphKind,
  inputs: ReferenceInputs,
): ReferenceOutputs {
  const signature = ONNX_GRAPH_SIGNATURES[graph];
  if (signature === undefined) throw invalidArgument('graph', 'an ONNX graph kind', graph);
  let rows: number | undefined;
  const input = (name: 'x' | 'z' | 'eps'): Float64Array => {
    const width = config[ONNX_TENSOR_WIDTHS[name]];
    const values = inputs[name];
    if (values === undefined || values.length % width !== 0 || (rows !== undefined && values.length / width !== rows)) {
      throw invalidArgument(`inputs.${name}`, `a Float32Array or Float64Array of ${rows ?? 'n'} rows x ${width}`, values);
    }
    rows = values.length / width;
    return Float64Array.from(values);
  };
  const act = config.activation;

  switch (graph) {
    case 'encoder':
      return encode(input('x'), weights, act, config.latentDim);
    case 'encoder-mean':
      return { mean: encode(input('x'), weights, act, config.latentDim).mean };
    case 'decoder':
      return { xHat: decode(input('z'), weights, config) };
    case 'sample':
      return { xHat: decode(input('eps'), weights, config) };
    case 'reconstruct': {
      const { mean, logVar } = encode(input('x'), weights, act, config.latentDim);
      const eps = input('eps');
      const z = mean.map((m, i) => m + Math.exp(logVar[i] / 2) * eps[i]);
      return { xHat: decode(z, weights, config) };
    }
  }
}

function encode(x: Float64Array, weights: VaeWeights, act: Activation, latentDim: number): { mean: Float64Array; logVar: Float64Array } {
  const h = weights.encoder.reduce((t, layer) => dense(t, layer).map((v) => activate(v, act)), x);
  const head = dense(h, weights.head);
  const rows = head.length / (2 * latentDim);
  const mean = new Float64Array(rows * latentDim);
  const logVar = new Float64Array(rows * latentDim);
  for (let r = 0; r < rows; r++) {
    mean.set(head.subarray(r * 2 * latentDim, r * 2 * latentDim + latentDim), r * latentDim);
    logVar.set(head.subarray(r * 2 * latentDim + latentDim, (r + 1) * 2 * latentDim), r * latentDim);
  }
  return { mean, logVar };
}

function decode(z: Float64Array, weights: VaeWeights, config: VaeConfig): Float64Array {
  const hidden = weights.decoder.slice(0, -1);
  const h = hidden.reduce((t, layer) => dense(t, layer).map((v) => activate(v, config.activation)), z);
  const out = dense(h, weights.decoder[weights.decoder.length - 1]);
  return config.likelihood === 'bernoulli' ? out.map(sigmoid) : out;
}

/** y = x W + b for every row of x, with W stored [inDim, outDim]. */
function dense(x: Float64Array, layer: DenseWeights): Float64Array {
  const { inDim, outDim, weight, bias } = layer;
  const rows = x.length / inDim;
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < outDim; j++) {
      let sum = bias[j];
      for (let i = 0; i < inDim; i++) sum += x[r * inDim + i] * weight[i * outDim + j];
      y[r * outDim + j] = sum;
    }
  }
  return y;
}

function activate(v: number, activation: Activation): number {
  switch (activation) {
    case 'relu':
      return Math.max(v, 0);
    case 'leaky_relu':
      return v >= 0 ? v : 0.01 * v;
    case 'tanh':
      return Math.tanh(v);
    case 'sigmoid':
      return sigmoid(v);
    case 'softplus':
      return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
  }
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}
