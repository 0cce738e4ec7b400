import type { DenseWeights, VaeConfig, VaeWeights } from '../../lib/model/types';

/** mulberry32: a tiny seeded uniform generator in [0, 1), independent of the library's own. */
export function uniforms(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` values (next() + offset) * scale. */
export function scaledArray(length: number, next: () => number, scale = 1, offset = -0.5): Float32Array {
  return Float32Array.from({ length }, () => (next() + offset) * scale);
}

/** Weights large enough (about 3 / sqrt(fan-in)) to drive every activation into its non-linear range. */
export function randomWeights(config: VaeConfig, seed: number): VaeWeights {
  const next = uniforms(seed);
  const layer = (inDim: number, outDim: number): DenseWeights => ({
    inDim,
    outDim,
    weight: scaledArray(inDim * outDim, next, 3 / Math.sqrt(inDim)),
    bias: scaledArray(outDim, next, 1),
  });
  const chain = (widths: number[]): DenseWeights[] => widths.slice(1).map((w, i) => layer(widths[i], w));
  const enc = [config.inputDim, ...config.encoderLayers];
  return {
    encoder: chain(enc),
    head: layer(enc[enc.length - 1], 2 * config.latentDim),
    decoder: chain([config.latentDim, ...config.decoderLayers, config.inputDim]),
  };
}

/** A small 13-7-5-3 model config for export and serving tests. */
export function makeConfig(overrides: Partial<VaeConfig> = {}): VaeConfig {
  return {
    inputDim: 13,
    latentDim: 3,
    encoderLayers: [7, 5],
    decoderLayers: [5, 7],
    activation: 'tanh',
    likelihood: 'bernoulli',
    beta: 1,
    seed: 1,
    ...overrides,
  };
}
