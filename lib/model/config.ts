import { randomInt } from 'crypto';
import { availableParallelism } from 'os';
import { describe, invalidArgument, VaeError } from '../errors';
import { Activation, ACTIVATIONS, Likelihood, LIKELIHOODS, VaeConfig } from './types';

/** Options of `new VAE(...)`; every field has a default (the classic 784-400-20 model). */
export interface VaeOptions {
  /** Input dimension n (default 784). */
  inputDim?: number;
  /** Latent dimension d (default 20). */
  latentDim?: number;
  /** Hidden layer widths of the encoder (default [400]). */
  encoderLayers?: readonly number[];
  /** Hidden layer widths of the decoder (default: the encoder's, reversed). */
  decoderLayers?: readonly number[];
  /** Hidden activation (default 'relu'). */
  activation?: Activation;
  /** Decoder likelihood (default 'bernoulli'). */
  likelihood?: Likelihood;
  /** Weight of the KL term (default 1; beta-VAE when != 1). */
  beta?: number;
  /** Seed of initialisation, shuffling and training noise (default: random, recorded in `vae.config.seed`). */
  seed?: number;
  /** Threads for native work (default: all cores). Changing it never changes results. */
  threads?: number;
}

export const MAX_DIM = 1 << 24;
const MAX_THREADS = 1024;

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

export function checkNumber(name: string, value: unknown, min: number, max: number, exclusiveMin = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (exclusiveMin ? value <= min : value < min)) {
    throw invalidArgument(name, `a finite number ${exclusiveMin ? '>' : '>='} ${min} and <= ${max}`, value);
  }
  return value;
}

function checkLayers(name: string, value: unknown): number[] {
  if (!Array.isArray(value)) throw invalidArgument(name, 'an array of layer widths (positive integers)', value);
  if (value.length > 64) throw invalidArgument(name, 'at most 64 layers', value);
  return value.map((w, i) => checkInteger(`${name}[${i}]`, w, 1, MAX_DIM));
}

function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw invalidArgument(name, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  }
  return value as T;
}

/**
 * An options argument: undefined (no options) or an object with only `known` keys, so that a
 * misspelt option is an error instead of silently taking its default.
 */
export function checkOptions<T extends object>(name: string, options: T | undefined, known: readonly string[]): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw invalidArgument(name, `an object with any of ${known.join(', ')}`, options);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new VaeError('ERR_INVALID_ARGUMENT', `Unknown option ${JSON.stringify(key)} in ${name}; expected one of ${known.join(', ')}`);
  }
  return options;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()));
}

export function checkThreads(name: string, value: unknown): number {
  return checkInteger(name, value, 1, MAX_THREADS);
}

/** Validates options and fills defaults; throws VaeError naming the first bad field. */
export function resolveConfig(options: VaeOptions | undefined): { config: VaeConfig; threads: number } {
  const o = checkOptions('options', options, ['inputDim', 'latentDim', 'encoderLayers', 'decoderLayers', 'activation', 'likelihood', 'beta', 'seed', 'threads']);
  const encoderLayers = checkLayers('options.encoderLayers', o.encoderLayers ?? [400]);
  const config: VaeConfig = {
    inputDim: checkInteger('options.inputDim', o.inputDim ?? 784, 1, MAX_DIM),
    latentDim: checkInteger('options.latentDim', o.latentDim ?? 20, 1, MAX_DIM),
    encoderLayers,
    decoderLayers: checkLayers('options.decoderLayers', o.decoderLayers ?? [...encoderLayers].reverse()),
    activation: checkChoice('options.activation', o.activation ?? 'relu', ACTIVATIONS),
    likelihood: checkChoice('options.likelihood', o.likelihood ?? 'bernoulli', LIKELIHOODS),
    beta: checkNumber('options.beta', o.beta ?? 1, 0, 1e6),
    seed: checkInteger('options.seed', o.seed ?? randomInt(0, 2 ** 47), 0, Number.MAX_SAFE_INTEGER),
  };
  const threads = checkThreads('options.threads', o.threads ?? defaultThreads());
  const params = parameterCount(config);
  if (params > 2 ** 31) {
    throw new VaeError('ERR_INVALID_ARGUMENT', `The model would have ${params} parameters; at most 2^31 are supported (received ${describe(options)})`);
  }
  return { config, threads };
}

/** Layer shapes [in, out] in parameter order: encoder hidden, head, decoder hidden, decoder output. */
export function layerShapes(c: VaeConfig): Array<[number, number]> {
  const shapes: Array<[number, number]> = [];
  let width = c.inputDim;
  for (const w of c.encoderLayers) {
    shapes.push([width, w]);
    width = w;
  }
  shapes.push([width, 2 * c.latentDim]);
  width = c.latentDim;
  for (const w of c.decoderLayers) {
    shapes.push([width, w]);
    width = w;
  }
  shapes.push([width, c.inputDim]);
  return shapes;
}

export function parameterCount(c: VaeConfig): number {
  return layerShapes(c).reduce((sum, [i, o]) => sum + i * o + o, 0);
}
