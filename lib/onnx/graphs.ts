import type { DenseWeights, VaeConfig, VaeWeights } from '../model/types';
import { GraphBuilder, type GraphInit } from './graph_builder';
import type { OnnxGraphKind } from './graph_kinds';

/**
 * The topology of each exported graph (see graph_kinds.ts), built from weights that
 * `checkExportInputs` has validated against the config.
 */
export function buildGraph(kind: OnnxGraphKind, config: VaeConfig, weights: VaeWeights): GraphInit {
  const g = new GraphBuilder();
  const { inputDim, latentDim } = config;
  switch (kind) {
    case 'encoder': {
      gaussianHead(g, encoderTrunk(g, g.input('x', inputDim), config, weights), weights, latentDim);
      g.output('mean', latentDim);
      g.output('logVar', latentDim);
      break;
    }
    case 'encoder-mean': {
      // Only the mean half of the head is stored, so the log-variance is never computed.
      const h = encoderTrunk(g, g.input('x', inputDim), config, weights);
      g.dense(h, headColumns(weights.head, 0, latentDim), 'head.mean', 'mean');
      g.output('mean', latentDim);
      break;
    }
    case 'decoder':
      decoder(g, g.input('z', latentDim), config, weights);
      break;
    case 'reconstruct': {
      const h = encoderTrunk(g, g.input('x', inputDim), config, weights);
      const eps = g.input('eps', latentDim);
      const { mean, logVar } = gaussianHead(g, h, weights, latentDim);
      // The reparameterisation z = mean + exp(logVar / 2) * eps.
      const half = g.initializer('half', [], new Float32Array([0.5]));
      const std = g.node('Exp', [g.node('Mul', [logVar, half], ['halfLogVar'])], ['std']);
      const z = g.node('Add', [mean, g.node('Mul', [std, eps], ['scaledEps'])], ['z']);
      decoder(g, z, config, weights);
      break;
    }
    case 'sample':
      // Prior draws z ~ N(0, I) are exactly the caller's eps.
      decoder(g, g.input('eps', latentDim), config, weights);
      break;
  }
  return g.build(`vae_${kind.replace('-', '_')}`, `vae-node ${kind} graph`);
}

/** The encoder's hidden layers, each followed by the activation. Returns the last hidden tensor. */
function encoderTrunk(g: GraphBuilder, x: string, config: VaeConfig, weights: VaeWeights): string {
  return weights.encoder.reduce(
    (h, layer, i) => g.activation(g.dense(h, layer, `encoder.${i}`), config.activation, `encoder.${i}.act`),
    x,
  );
}

/** The decoder's hidden layers and output layer, ending in the tensor `xHat`: the graph's output. */
function decoder(g: GraphBuilder, z: string, config: VaeConfig, weights: VaeWeights): void {
  const last = weights.decoder.length - 1;
  const h = weights.decoder
    .slice(0, last)
    .reduce((t, layer, i) => g.activation(g.dense(t, layer, `decoder.${i}`), config.activation, `decoder.${i}.act`), z);
  if (config.likelihood === 'bernoulli') {
    g.node('Sigmoid', [g.dense(h, weights.decoder[last], `decoder.${last}`, 'logits')], ['xHat']);
  } else {
    g.dense(h, weights.decoder[last], `decoder.${last}`, 'xHat');
  }
  g.output('xHat', config.inputDim);
}

/** The head as two Gemm nodes, the tensors 'mean' and 'logVar'. */
function gaussianHead(g: GraphBuilder, h: string, weights: VaeWeights, latentDim: number): { mean: string; logVar: string } {
  return {
    mean: g.dense(h, headColumns(weights.head, 0, latentDim), 'head.mean', 'mean'),
    logVar: g.dense(h, headColumns(weights.head, latentDim, latentDim), 'head.logVar', 'logVar'),
  };
}

/** Columns [start, start + count) of the head layer, as a layer of their own. */
function headColumns(head: DenseWeights, start: number, count: number): DenseWeights {
  const weight = new Float32Array(head.inDim * count);
  for (let i = 0; i < head.inDim; i++) {
    weight.set(head.weight.subarray(i * head.outDim + start, i * head.outDim + start + count), i * count);
  }
  return { inDim: head.inDim, outDim: count, weight, bias: head.bias.slice(start, start + count) };
}
