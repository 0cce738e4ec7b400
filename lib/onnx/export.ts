import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../data/io';
import { invalidArgument, VaeError } from '../errors';
import type { VaeConfig, VaeWeights } from '../model/types';
import { isOnnxGraphKind, ONNX_GRAPH_KINDS, ONNX_GRAPH_SIGNATURES, onnxFileName, type OnnxGraphKind } from './graph_kinds';
import { buildGraph } from './graphs';
import { LIBRARY_NAME, modelMetadata, packageVersion, toMetadataProps } from './metadata';
import { create, ModelProtoSchema, toBinary } from './proto';
import { checkExportInputs } from './validate';

/**
 * Opset 17 is the newest that onnx 1.12 (Debian's python3-onnx) can check; 18 is accepted
 * for newer toolchains. Every op used (Gemm, Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Exp,
 * Mul, Add) has the same semantics in both.
 */
export const DEFAULT_OPSET = 17;
export const SUPPORTED_OPSETS: readonly number[] = [17, 18];

/** IR version 8 (ONNX 1.10 - 1.13) covers opsets 17 and 18 and is read by onnx 1.12 and onnxruntime. */
export const IR_VERSION = 8;

export interface OnnxExportOptions {
  /** Which graph to export; see OnnxGraphKind. */
  graph: OnnxGraphKind;
  /** ONNX opset of the default domain: 17 (default) or 18. */
  opset?: number;
  /** Recorded in metadata and producer_version; defaults to this package's version. */
  libraryVersion?: string;
}

export type ExportAllOptions = Omit<OnnxExportOptions, 'graph'> & {
  /** Graphs to write; defaults to all of ONNX_GRAPH_KINDS. */
  graphs?: readonly OnnxGraphKind[];
};

/**
 * Serializes one graph of a VAE as a float32 ONNX model with the weights as initializers,
 * a dynamic batch dimension and vae-node metadata. Throws a VaeError if the weights do not
 * match the config.
 */
export function buildOnnxModel(config: VaeConfig, weights: VaeWeights, options: OnnxExportOptions): Uint8Array {
  const { graph, opset, libraryVersion } = checkOptions(options);
  checkExportInputs(config, weights);
  const signature = ONNX_GRAPH_SIGNATURES[graph];
  const model = create(ModelProtoSchema, {
    irVersion: BigInt(IR_VERSION),
    opsetImport: [{ domain: '', version: BigInt(opset) }],
    producerName: LIBRARY_NAME,
    producerVersion: libraryVersion,
    docString: `vae-node ${graph}: (${signature.inputs.join(', ')}) -> (${signature.outputs.join(', ')})`,
    graph: buildGraph(graph, config, weights),
    metadataProps: toMetadataProps(modelMetadata(config, graph, libraryVersion)),
  });
  return toBinary(ModelProtoSchema, model);
}

/**
 * Writes `buildOnnxModel(...)` to `path` atomically: a temporary file in the same directory
 * is renamed over `path`, so readers never see a half-written model.
 */
export async function writeOnnxModel(path: string, config: VaeConfig, weights: VaeWeights, options: OnnxExportOptions): Promise<void> {
  if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'a non-empty file path', path);
  await writeFileAtomic(path, buildOnnxModel(config, weights, options));
}

/**
 * Writes every graph (or `options.graphs`) to `dir` as `<kind>.onnx`, the layout
 * `OnnxVAE.open(dir)` reads. Creates `dir` if needed. Returns the written paths.
 */
export async function exportAll(dir: string, config: VaeConfig, weights: VaeWeights, options: ExportAllOptions = {}): Promise<string[]> {
  if (typeof dir !== 'string' || dir === '') throw invalidArgument('dir', 'a non-empty directory path', dir);
  const { graphs = ONNX_GRAPH_KINDS, ...common } = options;
  if (!Array.isArray(graphs) || graphs.length === 0 || !graphs.every(isOnnxGraphKind)) {
    throw invalidArgument('options.graphs', `a non-empty array of ${ONNX_GRAPH_KINDS.join(', ')}`, graphs);
  }
  // Build everything first so a bad argument leaves the directory untouched.
  const models = graphs.map((graph) => ({ path: join(dir, onnxFileName(graph)), bytes: buildOnnxModel(config, weights, { ...common, graph }) }));
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new VaeError('ERR_IO', `Could not create directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const { path, bytes } of models) await writeFileAtomic(path, bytes);
  return models.map((m) => m.path);
}

function checkOptions(options: OnnxExportOptions): Required<OnnxExportOptions> {
  if (options === null || typeof options !== 'object') throw invalidArgument('options', 'an object { graph, opset?, libraryVersion? }', options);
  const { graph, opset = DEFAULT_OPSET, libraryVersion = packageVersion() } = options;
  if (!isOnnxGraphKind(graph)) throw invalidArgument('options.graph', `one of ${ONNX_GRAPH_KINDS.join(', ')}`, graph);
  if (!SUPPORTED_OPSETS.includes(opset)) throw invalidArgument('options.opset', SUPPORTED_OPSETS.join(' or '), opset);
  if (typeof libraryVersion !== 'string' || libraryVersion === '') {
    throw invalidArgument('options.libraryVersion', 'a non-empty string', libraryVersion);
  }
  return { graph, opset, libraryVersion };
}
