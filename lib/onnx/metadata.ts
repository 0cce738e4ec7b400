import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VaeError } from '../errors';
import { ACTIVATIONS, LIKELIHOODS, type VaeConfig } from '../model/types';
import { isOnnxGraphKind, type OnnxGraphKind } from './graph_kinds';
import { fromBinary, ModelProtoSchema } from './proto';

export const LIBRARY_NAME = 'vae-node';

/**
 * What an exported model says about itself (ONNX metadata_props). A server needs the
 * dimensions to validate requests and the likelihood and input scaling to know what
 * the numbers mean, without the training code or the original config file.
 */
export interface OnnxModelMetadata extends Omit<VaeConfig, 'seed'> {
  library: string;
  libraryVersion: string;
  graph: OnnxGraphKind;
  /** How inputs must be scaled; the model expects data as it was given to training. */
  inputScaling: string;
}

/** metadata_props keys, in the order they are written. */
const KEYS = {
  library: 'library',
  libraryVersion: 'library_version',
  graph: 'graph',
  inputDim: 'input_dim',
  latentDim: 'latent_dim',
  encoderLayers: 'encoder_layers',
  decoderLayers: 'decoder_layers',
  activation: 'activation',
  likelihood: 'likelihood',
  beta: 'beta',
  inputScaling: 'input_scaling',
} as const satisfies Record<keyof OnnxModelMetadata, string>;

export interface MetadataEntry {
  key: string;
  value: string;
}

/** The metadata of one exported graph of a model with this config. */
export function modelMetadata(config: VaeConfig, graph: OnnxGraphKind, libraryVersion: string): OnnxModelMetadata {
  return {
    library: LIBRARY_NAME,
    libraryVersion,
    graph,
    inputDim: config.inputDim,
    latentDim: config.latentDim,
    encoderLayers: [...config.encoderLayers],
    decoderLayers: [...config.decoderLayers],
    activation: config.activation,
    likelihood: config.likelihood,
    beta: config.beta,
    inputScaling:
      config.likelihood === 'bernoulli'
        ? 'none; bernoulli expects values in [0,1] (e.g. 8-bit pixels divided by 255)'
        : 'none; gaussian expects values on the same scale as the training data',
  };
}

/** Serializes metadata as ONNX string pairs; layer lists are JSON arrays. */
export function toMetadataProps(metadata: OnnxModelMetadata): MetadataEntry[] {
  return (Object.keys(KEYS) as (keyof OnnxModelMetadata)[]).map((field) => {
    const value = metadata[field];
    return { key: KEYS[field], value: Array.isArray(value) ? JSON.stringify(value) : String(value) };
  });
}

/**
 * Parses and checks the metadata_props of a vae-node model. `source` (usually a file path)
 * names the model in errors, which have code ERR_FILE_FORMAT.
 */
export function parseMetadataProps(props: readonly MetadataEntry[], source: string): OnnxModelMetadata {
  const map = new Map(props.map((p) => [p.key, p.value]));
  const fail = (what: string): never => {
    throw new VaeError('ERR_FILE_FORMAT', `${source} is not a vae-node ONNX model: ${what}`);
  };
  const text = (key: string): string => map.get(key) ?? fail(`metadata_props has no "${key}"`);
  const count = (key: string): number => {
    const n = Number(text(key));
    return Number.isInteger(n) && n > 0 ? n : fail(`metadata "${key}" is ${JSON.stringify(text(key))}, not a positive integer`);
  };
  const widths = (key: string): number[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text(key));
    } catch {
      parsed = undefined;
    }
    const ok = Array.isArray(parsed) && parsed.every((w) => Number.isInteger(w) && w > 0);
    return ok ? (parsed as number[]) : fail(`metadata "${key}" is ${JSON.stringify(text(key))}, not a JSON array of widths`);
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T => {
    const value = text(key);
    return (allowed as readonly string[]).includes(value) ? (value as T) : fail(`metadata "${key}" is ${JSON.stringify(value)}`);
  };

  const library = text(KEYS.library);
  if (library !== LIBRARY_NAME) fail(`metadata "library" is ${JSON.stringify(library)}`);
  const graph = text(KEYS.graph);
  if (!isOnnxGraphKind(graph)) return fail(`metadata "graph" is ${JSON.stringify(graph)}`);
  const beta = Number(text(KEYS.beta));
  if (!Number.isFinite(beta)) fail(`metadata "beta" is ${JSON.stringify(text(KEYS.beta))}`);
  return {
    library,
    libraryVersion: text(KEYS.libraryVersion),
    graph,
    inputDim: count(KEYS.inputDim),
    latentDim: count(KEYS.latentDim),
    encoderLayers: widths(KEYS.encoderLayers),
    decoderLayers: widths(KEYS.decoderLayers),
    activation: oneOf(KEYS.activation, ACTIVATIONS),
    likelihood: oneOf(KEYS.likelihood, LIKELIHOODS),
    beta,
    inputScaling: text(KEYS.inputScaling),
  };
}

/** Reads the vae-node metadata of a serialized ONNX model. */
export function readOnnxMetadata(model: Uint8Array, source: string): OnnxModelMetadata {
  let props: MetadataEntry[];
  try {
    props = fromBinary(ModelProtoSchema, model).metadataProps;
  } catch (err) {
    throw new VaeError('ERR_FILE_FORMAT', `${source} is not a valid ONNX protobuf: ${(err as Error).message}`, { cause: err });
  }
  return parseMetadataProps(props, source);
}

let cachedVersion: string | undefined;

/**
 * The version of this package, recorded in every export so a model can be traced to the
 * code that wrote it. lib/onnx and dist/onnx are both two levels below package.json.
 */
export function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      cachedVersion = pkg.name === LIBRARY_NAME && typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
