import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { allocateFloats, type Matrix } from '../data/matrix';
import { stableInput, whileAttached } from '../data/async_buffers';
import { invalidArgument, VaeError } from '../errors';
import { checkOptions } from '../model/config';
import {
  isOnnxGraphKind,
  ONNX_GRAPH_KINDS,
  ONNX_GRAPH_SIGNATURES,
  ONNX_TENSOR_WIDTHS,
  onnxFileName,
  type OnnxGraphKind,
  type OnnxTensorName,
} from '../onnx/graph_kinds';
import { readOnnxMetadata, type OnnxModelMetadata } from '../onnx/metadata';
import { checkInput, type MatrixInput } from './input';
import { normalDraws, randomSeed } from './normal';
import { onnxRuntime } from './runtime';

export interface OnnxVAEOptions {
  /** Threads used inside one op (onnxruntime's intra_op_num_threads); 0 = onnxruntime's default. */
  intraOpNumThreads?: number;
  /** Threads running independent ops in parallel; 0 = onnxruntime's default. */
  interOpNumThreads?: number;
  /** With a directory: the graphs to load (each must exist). Default: every `<kind>.onnx` present. */
  graphs?: readonly OnnxGraphKind[];
  /** Rows per onnxruntime call; bounds the memory of one call on very large inputs. Default 4096. */
  batchSize?: number;
}

/** The model-level metadata shared by all loaded graphs. */
export type OnnxVAEMetadata = Omit<OnnxModelMetadata, 'graph'>;

export interface ReconstructOptions {
  /** Noise, [rows of x, latentDim]; z = mean + exp(logVar / 2) * eps. Excludes `seed`. */
  eps?: MatrixInput;
  /** Seed for eps drawn from N(0, I). Without eps or seed the noise is not reproducible. */
  seed?: number;
}

export interface SampleOptions {
  /** Seed for the prior draws; the same seed gives the same samples. */
  seed?: number;
}

const DEFAULT_BATCH_SIZE = 4096;
// As VAE.sample: draws beyond this are better asked for in parts.
const MAX_SAMPLE_ROWS = 1 << 24;

/** Config fields that every graph of one exported model must agree on. */
const MODEL_FIELDS = ['inputDim', 'latentDim', 'encoderLayers', 'decoderLayers', 'activation', 'likelihood', 'beta'] as const;

/**
 * A VAE served from the ONNX graphs written by `exportAll` (or one graph written by
 * `writeOnnxModel`), run with onnxruntime-node on the CPU. All data are row-major float32:
 * inputs are a flat Float32Array or a Matrix { data, rows, cols }, outputs flat Float32Arrays
 * with one row per input row.
 */
export class OnnxVAE {
  readonly metadata: OnnxVAEMetadata;
  private readonly sessions: Map<OnnxGraphKind, InferenceSession>;
  private readonly batchSize: number;
  private closed = false;
  private closing: Promise<void> | undefined; // every close() call settles with the release
  // Calls between their first and last session.run; close() waits for them to stop.
  private running = 0;
  private whenIdle: Array<() => void> = [];

  private constructor(sessions: Map<OnnxGraphKind, InferenceSession>, metadata: OnnxVAEMetadata, batchSize: number) {
    this.sessions = sessions;
    this.metadata = metadata;
    this.batchSize = batchSize;
  }

  get inputDim(): number {
    return this.metadata.inputDim;
  }

  get latentDim(): number {
    return this.metadata.latentDim;
  }

  /** The loaded graphs. */
  get graphs(): OnnxGraphKind[] {
    return [...this.sessions.keys()];
  }

  /**
   * Opens a directory written by `exportAll`, or a single `.onnx` file. Reads each model's
   * metadata, checks that all graphs come from the same model, and creates one
   * onnxruntime session per graph.
   */
  static async open(pathOrDir: string, options: OnnxVAEOptions = {}): Promise<OnnxVAE> {
    if (typeof pathOrDir !== 'string' || pathOrDir === '') throw invalidArgument('pathOrDir', 'a file or directory path', pathOrDir);
    const { sessionOptions, batchSize, graphs } = resolveOpenOptions(options);
    const files = await graphFiles(pathOrDir, graphs);

    const loaded: { kind: OnnxGraphKind; path: string; bytes: Uint8Array; metadata: OnnxModelMetadata }[] = [];
    for (const { path, kind } of files) {
      const bytes = await readModelFile(path);
      const metadata = readOnnxMetadata(bytes, path);
      if (kind !== undefined && metadata.graph !== kind) {
        throw new VaeError('ERR_FILE_FORMAT', `${path} holds the ${metadata.graph} graph, expected ${kind}`);
      }
      if (graphs !== undefined && !graphs.includes(metadata.graph)) {
        throw invalidArgument('options.graphs', `to include "${metadata.graph}", the graph in ${path}`, graphs);
      }
      checkSameModel(metadata, path, loaded[0]);
      loaded.push({ kind: metadata.graph, path, bytes, metadata });
    }

    const sessions = new Map<OnnxGraphKind, InferenceSession>();
    try {
      for (const { kind, path, bytes } of loaded) sessions.set(kind, await createSession(kind, path, bytes, sessionOptions));
    } catch (err) {
      await Promise.all([...sessions.values()].map((s) => s.release()));
      throw err;
    }
    const { graph: _graph, ...metadata } = loaded[0].metadata;
    return new OnnxVAE(sessions, metadata, batchSize);
  }

  /** The posterior q(z|x): mean and log-variance, [rows, latentDim] each. */
  async encode(x: MatrixInput): Promise<{ mean: Float32Array; logVar: Float32Array }> {
    const { mean, logVar } = await this.run(['encoder'], 'encode', { x: this.input(x, 'inputDim', 'x') }, ['mean', 'logVar']);
    return { mean, logVar };
  }

  /** The posterior mean only, [rows, latentDim]: the usual embedding of x. */
  async encodeMean(x: MatrixInput): Promise<Float32Array> {
    return (await this.run(['encoder-mean', 'encoder'], 'encodeMean', { x: this.input(x, 'inputDim', 'x') }, ['mean'])).mean;
  }

  /** The decoder's mean for latent codes z [rows, latentDim]: probabilities (bernoulli) or means (gaussian). */
  async decode(z: MatrixInput): Promise<Float32Array> {
    return (await this.run(['decoder'], 'decode', { z: this.input(z, 'latentDim', 'z') }, ['xHat'])).xHat;
  }

  /**
   * Encodes x, draws z = mean + exp(logVar / 2) * eps and decodes it. eps is given, or
   * drawn from `seed` row by row, so the result does not depend on the batch size.
   */
  async reconstruct(x: MatrixInput, options: ReconstructOptions = {}): Promise<Float32Array> {
    const input = this.input(x, 'inputDim', 'x');
    checkOptions('options', options, ['eps', 'seed']);
    if (options.eps !== undefined && options.seed !== undefined) {
      throw invalidArgument('options', 'either eps or seed, not both', options);
    }
    const eps =
      options.eps !== undefined
        ? this.input(options.eps, 'latentDim', 'options.eps', input.rows)
        : this.noise(input.rows, options.seed, 'x');
    return (await this.run(['reconstruct'], 'reconstruct', { x: input, eps }, ['xHat'])).xHat;
  }

  /** `n` samples [n, inputDim] from the model: the decoder applied to draws from the prior N(0, I). */
  async sample(n: number, options: SampleOptions = {}): Promise<Float32Array> {
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SAMPLE_ROWS) throw invalidArgument('n', `an integer in [1, ${MAX_SAMPLE_ROWS}]`, n);
    checkOptions('options', options, ['seed']);
    const eps = this.noise(n, options.seed, 'n');
    if (this.sessions.has('sample')) return (await this.run(['sample'], 'sample', { eps }, ['xHat'], 'n')).xHat;
    return (await this.run(['decoder'], 'sample', { z: eps }, ['xHat'], 'n')).xHat;
  }

  /**
   * Releases the onnxruntime sessions; the instance cannot be used afterwards. Calls still
   * running stop before their next batch and reject with ERR_ABORTED; the sessions are released
   * once they have.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.running > 0) await new Promise<void>((resolve) => this.whenIdle.push(resolve));
      await Promise.all([...this.sessions.values()].map((s) => s.release()));
    })();
    return this.closing;
  }

  // Checked, and copied if its buffer is resizable: a call reads it across several batches.
  private input(value: MatrixInput, width: 'inputDim' | 'latentDim', name: string, rows?: number): Matrix {
    return stableInput(checkInput(value, this.metadata[width], name, rows));
  }

  // eps ~ N(0, I) for `rows` rows, whose number the argument `rowsName` decides.
  private noise(rows: number, seed: number | undefined, rowsName: string): Matrix {
    if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) throw invalidArgument('options.seed', 'a non-negative safe integer', seed);
    const cols = this.latentDim;
    return { data: normalDraws(rows * cols, seed ?? randomSeed(), rowsName), rows, cols };
  }

  /**
   * Runs the first loaded graph of `kinds` on `feeds` in batches of `batchSize` rows
   * and concatenates the requested outputs.
   */
  private async run<O extends OnnxTensorName>(
    kinds: readonly OnnxGraphKind[],
    method: string,
    feeds: Partial<Record<OnnxTensorName, Matrix>>,
    outputs: readonly O[],
    sizeName?: string, // the argument that decides the rows (default: the first feed)
  ): Promise<Record<O, Float32Array>> {
    if (this.closed) throw new VaeError('ERR_INVALID_ARGUMENT', `${method}() called after close()`);
    const kind = kinds.find((k) => this.sessions.has(k));
    if (kind === undefined) {
      throw new VaeError(
        'ERR_INVALID_ARGUMENT',
        `${method}() needs the ${kinds.join(' or ')} graph, but only ${this.graphs.join(', ')} ${this.sessions.size === 1 ? 'is' : 'are'} loaded; ` +
          `open the model with options.graphs including ${kinds[0]}`,
      );
    }
    const session = this.sessions.get(kind) as InferenceSession;
    const entries = Object.entries(feeds) as [OnnxTensorName, Matrix][];
    const rows = entries[0][1].rows;
    const results = Object.fromEntries(
      outputs.map((name) => [name, allocateFloats(rows * this.metadata[ONNX_TENSOR_WIDTHS[name]], sizeName ?? entries[0][0])]),
    ) as Record<O, Float32Array>;

    this.running++;
    try {
      // Your code runs between batches: an input transferred meanwhile is reported as such.
      return await whileAttached(Object.fromEntries(entries.map(([name, m]) => [name, m.data])), async () => {
        const { Tensor } = onnxRuntime();
        for (let start = 0; start < rows; start += this.batchSize) {
          if (this.closed) throw new VaeError('ERR_ABORTED', `${method}() stopped: close() was called while it ran`);
          const end = Math.min(rows, start + this.batchSize);
          const batch: Record<string, Tensor> = {};
          for (const [name, m] of entries) batch[name] = new Tensor('float32', m.data.subarray(start * m.cols, end * m.cols), [end - start, m.cols]);
          const fetched = await session.run(batch, outputs as readonly string[]);
          for (const name of outputs) {
            const width = this.metadata[ONNX_TENSOR_WIDTHS[name]];
            results[name].set(fetched[name].data as Float32Array, start * width);
          }
        }
        return results;
      });
    } finally {
      this.running--;
      if (this.running === 0) for (const resolve of this.whenIdle.splice(0)) resolve();
    }
  }
}

function resolveOpenOptions(options: OnnxVAEOptions): {
  sessionOptions: InferenceSession.SessionOptions;
  batchSize: number;
  graphs: readonly OnnxGraphKind[] | undefined;
} {
  const { intraOpNumThreads, interOpNumThreads, graphs, batchSize = DEFAULT_BATCH_SIZE } = checkOptions('options', options, ['intraOpNumThreads', 'interOpNumThreads', 'graphs', 'batchSize']);
  for (const [name, n] of [['intraOpNumThreads', intraOpNumThreads], ['interOpNumThreads', interOpNumThreads]] as const) {
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw invalidArgument(`options.${name}`, 'a non-negative integer', n);
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw invalidArgument('options.batchSize', 'a positive integer', batchSize);
  if (graphs !== undefined && (!Array.isArray(graphs) || graphs.length === 0 || !graphs.every(isOnnxGraphKind))) {
    throw invalidArgument('options.graphs', `a non-empty array of ${ONNX_GRAPH_KINDS.join(', ')}`, graphs);
  }
  const sessionOptions: InferenceSession.SessionOptions = { executionProviders: ['cpu'] };
  if (intraOpNumThreads !== undefined && intraOpNumThreads > 0) sessionOptions.intraOpNumThreads = intraOpNumThreads;
  if (interOpNumThreads !== undefined && interOpNumThreads > 0) sessionOptions.interOpNumThreads = interOpNumThreads;
  return { sessionOptions, batchSize, graphs };
}

/** The files to load: `<kind>.onnx` in a directory (kind known), or one file (kind from its metadata). */
async function graphFiles(pathOrDir: string, graphs: readonly OnnxGraphKind[] | undefined): Promise<{ path: string; kind?: OnnxGraphKind }[]> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(pathOrDir)).isDirectory();
  } catch (err) {
    throw new VaeError('ERR_IO', `Could not open ${pathOrDir}: ${(err as Error).message}`, { cause: err });
  }
  if (!isDirectory) return [{ path: pathOrDir }];

  const wanted = graphs ?? ONNX_GRAPH_KINDS;
  const found: { path: string; kind: OnnxGraphKind }[] = [];
  for (const kind of wanted) {
    const path = join(pathOrDir, onnxFileName(kind));
    const exists = await stat(path).then((s) => s.isFile(), () => false);
    if (exists) found.push({ path, kind });
    else if (graphs !== undefined) throw new VaeError('ERR_IO', `${pathOrDir} has no ${onnxFileName(kind)} (requested in options.graphs)`);
  }
  if (found.length === 0) {
    throw new VaeError('ERR_IO', `${pathOrDir} holds none of ${ONNX_GRAPH_KINDS.map(onnxFileName).join(', ')}; write them with exportAll()`);
  }
  return found;
}

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new VaeError('ERR_IO', `Could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function checkSameModel(metadata: OnnxModelMetadata, path: string, first: { path: string; metadata: OnnxModelMetadata } | undefined): void {
  if (first === undefined) return;
  for (const field of MODEL_FIELDS) {
    const [a, b] = [JSON.stringify(metadata[field]), JSON.stringify(first.metadata[field])];
    if (a !== b) {
      throw new VaeError('ERR_FILE_FORMAT', `${basename(path)} and ${basename(first.path)} come from different models (${field} ${a} vs ${b})`);
    }
  }
}

async function createSession(kind: OnnxGraphKind, path: string, bytes: Uint8Array, options: InferenceSession.SessionOptions): Promise<InferenceSession> {
  const runtime = onnxRuntime(); // outside the try: a missing runtime is not a bad file
  let session: InferenceSession;
  try {
    session = await runtime.InferenceSession.create(bytes, options);
  } catch (err) {
    throw new VaeError('ERR_FILE_FORMAT', `onnxruntime could not load ${path}: ${(err as Error).message}`, { cause: err });
  }
  const { inputs, outputs } = ONNX_GRAPH_SIGNATURES[kind];
  const missing = [...inputs.filter((n) => !session.inputNames.includes(n)), ...outputs.filter((n) => !session.outputNames.includes(n))];
  if (missing.length > 0) {
    await session.release();
    throw new VaeError('ERR_FILE_FORMAT', `${path} (${kind}) lacks the tensors ${missing.join(', ')}`);
  }
  return session;
}
