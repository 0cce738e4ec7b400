import { invalidArgument, VaeError } from '../errors';
import { ACTIVATIONS, LIKELIHOODS, type DenseWeights, type VaeConfig, type VaeWeights } from '../model/types';

/**
 * Checks that `config` is well formed and that `weights` has exactly the layers and shapes
 * it implies, with finite values. Exporting is the last point where a mismatch can be
 * named precisely; onnxruntime would later only report an opaque shape error.
 */
export function checkExportInputs(config: VaeConfig, weights: VaeWeights): void {
  checkConfig(config);
  if (weights === null || typeof weights !== 'object') {
    throw invalidArgument('weights', 'an object { encoder, head, decoder }', weights);
  }
  const encoderWidths = [config.inputDim, ...config.encoderLayers];
  checkLayerList(weights.encoder, 'weights.encoder', encoderWidths);
  checkLayer(weights.head, 'weights.head', encoderWidths[encoderWidths.length - 1], 2 * config.latentDim);
  checkLayerList(weights.decoder, 'weights.decoder', [config.latentDim, ...config.decoderLayers, config.inputDim]);
}

function checkConfig(config: VaeConfig): void {
  if (config === null || typeof config !== 'object') throw invalidArgument('config', 'a VaeConfig object', config);
  checkCount(config.inputDim, 'config.inputDim');
  checkCount(config.latentDim, 'config.latentDim');
  checkWidths(config.encoderLayers, 'config.encoderLayers');
  checkWidths(config.decoderLayers, 'config.decoderLayers');
  if (!ACTIVATIONS.includes(config.activation)) {
    throw invalidArgument('config.activation', `one of ${ACTIVATIONS.join(', ')}`, config.activation);
  }
  if (!LIKELIHOODS.includes(config.likelihood)) {
    throw invalidArgument('config.likelihood', `one of ${LIKELIHOODS.join(', ')}`, config.likelihood);
  }
  if (typeof config.beta !== 'number' || !Number.isFinite(config.beta)) {
    throw invalidArgument('config.beta', 'a finite number', config.beta);
  }
}

function checkCount(n: unknown, name: string): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw invalidArgument(name, 'a positive integer', n);
}

function checkWidths(widths: unknown, name: string): void {
  if (!Array.isArray(widths)) throw invalidArgument(name, 'an array of positive integers', widths);
  widths.forEach((w, i) => checkCount(w, `${name}[${i}]`));
}

/** `widths` lists the input width, then each layer's output width. */
function checkLayerList(layers: readonly DenseWeights[], name: string, widths: readonly number[]): void {
  const count = widths.length - 1;
  if (!Array.isArray(layers) || layers.length !== count) {
    throw invalidArgument(name, `an array of ${count} layers (from the config)`, layers);
  }
  layers.forEach((layer, i) => checkLayer(layer, `${name}[${i}]`, widths[i], widths[i + 1]));
}

function checkLayer(layer: DenseWeights, name: string, inDim: number, outDim: number): void {
  if (layer === null || typeof layer !== 'object') {
    throw invalidArgument(name, 'a layer { inDim, outDim, weight, bias }', layer);
  }
  if (layer.inDim !== inDim) throw invalidArgument(`${name}.inDim`, `${inDim} (from the config)`, layer.inDim);
  if (layer.outDim !== outDim) throw invalidArgument(`${name}.outDim`, `${outDim} (from the config)`, layer.outDim);
  checkValues(layer.weight, `${name}.weight`, inDim * outDim, `${inDim} x ${outDim}`);
  checkValues(layer.bias, `${name}.bias`, outDim, `${outDim}`);
}

function checkValues(values: Float32Array, name: string, length: number, shape: string): void {
  if (!(values instanceof Float32Array) || values.length !== length) {
    throw invalidArgument(name, `a Float32Array of length ${length} (${shape})`, values);
  }
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new VaeError('ERR_NON_FINITE', `${name}[${bad}] is ${values[bad]}; cannot export non-finite weights`);
}
