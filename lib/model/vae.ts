import { Matrix, toMatrix } from '../data/matrix';
import { invalidArgument, VaeError } from '../errors';
import { loadBinding, NativeModel, rethrowNative } from '../native/binding';
import { normalDraws, randomSeed } from '../serve/normal';
import { checkInteger, checkThreads, layerShapes, resolveConfig, VaeOptions } from './config';
import { EpochStats, FitOptions, runFit } from './fit';
import { libraryVersion } from '../version';
import type { OnnxGraphKind } from '../onnx';
import { encodeModelFile, ModelFileContents, readModelFile, readModelFileSync, writeFileAtomic, writeFileAtomicSync } from './file_format';
import { ACTIVATIONS, DenseWeights, VaeConfig, VaeWeights } from './types';

/** Model input: a flat row-major Float32Array (rows x cols) or a Matrix. */
export type Input = Float32Array | Matrix;

/** Parameters of q(z|x) for each row: [rows, latentDim] row-major each. */
export interface Encoding {
  mean: Float32Array;
  logVar: Float32Array;
}

/** Per-sample means over the rows evaluated; loss is the negative ELBO (nats for bernoulli). */
export interface Evaluation {
  loss: number;
  reconstruction: number;
  kl: number;
}

/** Training state carried in model files so training can resume exactly. */
export interface OptimizerState {
  m: Float32Array;
  v: Float32Array;
  step: number;
  rngState: Uint32Array;
}

/**
 * A variational auto-encoder with MLP encoder and decoder, trained natively.
 *
 * Sync methods (`encode`, `decode`, ...) run on the calling thread: use them for
 * small batches. Their `*Async` twins run on a native worker thread and leave the
 * event loop free: use them for large batches in servers. `fit` is always async.
 */
export class VAE {
  readonly config: Readonly<VaeConfig>;
  #native: NativeModel;
  #threads: number;
  #training = false;
  #pendingReads = 0;
  #history: EpochStats[] = [];

  constructor(options: VaeOptions = {}) {
    const { config, threads } = resolveConfig(options);
    this.config = Object.freeze({ ...config, encoderLayers: [...config.encoderLayers], decoderLayers: [...config.decoderLayers] });
    this.#threads = threads;
    const binding = loadBinding();
    try {
      this.#native = new binding.NativeModel({
        ...config,
        activation: ACTIVATIONS.indexOf(config.activation),
        likelihood: config.likelihood === 'bernoulli' ? 0 : 1,
        threads,
      });
    } catch (err) {
      rethrowNative(err);
    }
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    return this.#native.paramCount;
  }

  /** Threads used by native work. Setting it never changes results, only speed. */
  get threads(): number {
    return this.#threads;
  }
  set threads(value: number) {
    this.#assertIdle('setting threads');
    if (this.#pendingReads > 0) throw new VaeError('ERR_BUSY', 'async inference calls are still running on this model; await them before setting threads');
    this.#threads = checkThreads('threads', value);
    this.#native.setThreads(value);
  }

  /** Per-epoch statistics of every fit() so far (kept in saved files). */
  get history(): readonly EpochStats[] {
    return this.#history;
  }

  /** True while fit() runs. */
  get isTraining(): boolean {
    return this.#training;
  }

  // ---- training ------------------------------------------------------------------------

  /**
   * Trains on `data` (rows x inputDim) with Adam, minimising the negative ELBO
   * (reconstruction + beta * KL, per-sample mean). Runs on a native worker thread.
   * Resolves with the per-epoch history of this call. An AbortSignal stops it after
   * the current batch; the promise then rejects with code ERR_ABORTED and the model
   * keeps the parameters of the last completed batch.
   */
  async fit(data: Input, options: FitOptions = {}): Promise<EpochStats[]> {
    if (this.#training) throw new VaeError('ERR_BUSY', 'fit() is already running on this model; wait for it to settle');
    if (this.#pendingReads > 0) throw new VaeError('ERR_BUSY', 'async inference calls are still running on this model; await them before fit()');
    const train = toMatrix(data, this.config.inputDim, 'data');
    const validation = options.validationData === undefined ? undefined : toMatrix(options.validationData, this.config.inputDim, 'options.validationData');
    this.#training = true;
    try {
      const history = await runFit(this.#native, this.config, train, validation, options);
      this.#history.push(...history);
      return history;
    } catch (err) {
      const partial = (err as { history?: EpochStats[] }).history;
      if (partial) this.#history.push(...partial);
      if (err instanceof VaeError) throw err;
      rethrowNative(err);
    } finally {
      this.#training = false;
    }
  }

  // ---- inference --------------------------------------------------------------------------

  /** Mean and log-variance of q(z|x) for each row. [sync] */
  encode(x: Input): Encoding {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = new Float32Array(input.rows * this.config.latentDim);
    const logVar = new Float32Array(input.rows * this.config.latentDim);
    this.#call(() => this.#native.encode(input.data, input.rows, mean, logVar));
    return { mean, logVar };
  }

  /** encode() on a worker thread. */
  async encodeAsync(x: Input): Promise<Encoding> {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = new Float32Array(input.rows * this.config.latentDim);
    const logVar = new Float32Array(input.rows * this.config.latentDim);
    await this.#callAsync(() => this.#native.encodeAsync(input.data, input.rows, mean, logVar));
    return { mean, logVar };
  }

  /** Mean of q(z|x) only (skips the log-variance output copy). [sync] */
  encodeMean(x: Input): Float32Array {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = new Float32Array(input.rows * this.config.latentDim);
    this.#call(() => this.#native.encode(input.data, input.rows, mean, null));
    return mean;
  }

  /**
   * encodeMean() on a worker thread; `out` (optional, sharing no memory with `x`) receives
   * the means in place. If the call rejects (NaN or infinity in `x`), `out` holds partial results.
   */
  async encodeMeanAsync(x: Input, out?: Float32Array): Promise<Float32Array> {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = this.#output(out, input.rows * this.config.latentDim, 'out', input.data);
    await this.#callAsync(() => this.#native.encodeAsync(input.data, input.rows, mean, null));
    return mean;
  }

  /** Decoder output for each latent row: probabilities (bernoulli) or means (gaussian). [sync] */
  decode(z: Input): Float32Array {
    const input = this.#input(z, this.config.latentDim, 'z');
    const out = new Float32Array(input.rows * this.config.inputDim);
    this.#call(() => this.#native.decode(input.data, input.rows, out));
    return out;
  }

  /** decode() on a worker thread. */
  async decodeAsync(z: Input): Promise<Float32Array> {
    const input = this.#input(z, this.config.latentDim, 'z');
    const out = new Float32Array(input.rows * this.config.inputDim);
    await this.#callAsync(() => this.#native.decodeAsync(input.data, input.rows, out));
    return out;
  }

  /**
   * decode(encode(x)): by default through z = mean (deterministic); with `eps`
   * ([rows, latentDim] noise) through z = mean + exp(logVar / 2) * eps. [sync]
   */
  reconstruct(x: Input, options: { eps?: Input } = {}): Float32Array {
    const input = this.#input(x, this.config.inputDim, 'x');
    const eps = this.#eps(options?.eps, input.rows);
    const out = new Float32Array(input.rows * this.config.inputDim);
    this.#call(() => this.#native.reconstruct(input.data, input.rows, eps, out));
    return out;
  }

  /** reconstruct() on a worker thread. */
  async reconstructAsync(x: Input, options: { eps?: Input } = {}): Promise<Float32Array> {
    const input = this.#input(x, this.config.inputDim, 'x');
    const eps = this.#eps(options?.eps, input.rows);
    const out = new Float32Array(input.rows * this.config.inputDim);
    await this.#callAsync(() => this.#native.reconstructAsync(input.data, input.rows, eps, out));
    return out;
  }

  /**
   * n draws from the model: decode(eps) with eps ~ N(0, I) from `seed`. The same seed
   * gives the same draws as OnnxVAE.sample. [sync]
   */
  sample(n: number, options: { seed?: number } = {}): Float32Array {
    checkInteger('n', n, 1, 1 << 24);
    const seed = options?.seed === undefined ? randomSeed() : checkInteger('options.seed', options.seed, 0, Number.MAX_SAFE_INTEGER);
    return this.decode(normalDraws(n * this.config.latentDim, seed));
  }

  /**
   * Negative ELBO (reconstruction + KL, whatever beta is), reconstruction and KL as
   * per-sample means over the rows of x,
   * with one draw of z per row from `seed` (default 0, so repeated calls agree). [sync]
   */
  evaluate(x: Input, options: { seed?: number } = {}): Evaluation {
    const input = this.#input(x, this.config.inputDim, 'x');
    const seed = checkInteger('options.seed', options?.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const sums = this.#call(() => this.#native.evaluate(input.data, input.rows, seed));
    return this.#evaluation(sums, input.rows);
  }

  /** evaluate() on a worker thread. */
  async evaluateAsync(x: Input, options: { seed?: number } = {}): Promise<Evaluation> {
    const input = this.#input(x, this.config.inputDim, 'x');
    const seed = checkInteger('options.seed', options?.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const sums = await this.#callAsync(() => this.#native.evaluateAsync(input.data, input.rows, seed));
    return this.#evaluation(sums, input.rows);
  }

  /**
   * Importance-weighted estimate of log p(x) per sample (IWAE, Burda et al. 2016):
   * log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with K = `samples` draws per row from
   * `seed`. A lower bound of log p(x) that tightens as K grows (K = 1 is the ELBO);
   * the same constant-free likelihoods as the losses. Runs on a worker thread.
   */
  async logLikelihoodAsync(x: Input, options: { samples?: number; seed?: number } = {}): Promise<number> {
    const input = this.#input(x, this.config.inputDim, 'x');
    const samples = checkInteger('options.samples', options?.samples ?? 100, 1, 1 << 20);
    const seed = checkInteger('options.seed', options?.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const total = await this.#callAsync(() => this.#native.logLikelihoodAsync(input.data, input.rows, samples, seed));
    return total / input.rows;
  }

  // ---- weights and state ------------------------------------------------------------------

  /** A copy of all weights, layer by layer (the layout ONNX export uses). */
  getWeights(): VaeWeights {
    const flat = this.getParameters();
    const layers: DenseWeights[] = [];
    let offset = 0;
    for (const [inDim, outDim] of layerShapes(this.config)) {
      const weight = flat.subarray(offset, offset + inDim * outDim);
      const bias = flat.subarray(offset + inDim * outDim, offset + inDim * outDim + outDim);
      layers.push({ inDim, outDim, weight, bias });
      offset += inDim * outDim + outDim;
    }
    const nEnc = this.config.encoderLayers.length;
    return { encoder: layers.slice(0, nEnc), head: layers[nEnc], decoder: layers.slice(nEnc + 1) };
  }

  /** All parameters as one flat copy (layer by layer: weight [in, out] then bias [out]). */
  getParameters(): Float32Array {
    this.#assertIdle('getParameters()');
    const flat = new Float32Array(this.parameterCount);
    this.#native.copyParams(flat);
    return flat;
  }

  /** Replaces all parameters (same layout as getParameters()). */
  setParameters(params: Float32Array): void {
    this.#assertIdle('setParameters()');
    if (this.#pendingReads > 0) throw new VaeError('ERR_BUSY', 'async inference calls are still running on this model');
    if (!(params instanceof Float32Array) || params.length !== this.parameterCount) {
      throw invalidArgument('params', `a Float32Array of ${this.parameterCount} values`, params);
    }
    this.#call(() => this.#native.setParams(params));
  }

  /** Adam moments, step and training RNG state (for save files). */
  getOptimizerState(): OptimizerState {
    this.#assertIdle('getOptimizerState()');
    const m = new Float32Array(this.parameterCount);
    const v = new Float32Array(this.parameterCount);
    const rngState = new Uint32Array(12);
    const step = this.#native.copyOptimizer(m, v, rngState);
    return { m, v, step, rngState };
  }

  setOptimizerState(state: OptimizerState): void {
    this.#assertIdle('setOptimizerState()');
    this.#call(() => this.#native.setOptimizer(state.m, state.v, state.rngState, state.step));
  }

  /** Restores history from a save file. */
  setHistory(history: EpochStats[]): void {
    this.#history = [...history];
  }

  // ---- ONNX ---------------------------------------------------------------------------------

  /**
   * Writes one graph as a standard ONNX model (float32, dynamic batch, weights as
   * initializers, noise as an explicit `eps` input): 'encoder' x -> mean, logVar;
   * 'encoder-mean' x -> mean; 'decoder' z -> xHat; 'reconstruct' x, eps -> xHat;
   * 'sample' eps -> xHat. xHat is probabilities (bernoulli) or means (gaussian).
   */
  async exportOnnx(file: string, options: { graph: OnnxGraphKind; opset?: number }): Promise<void> {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    if (options === null || typeof options !== 'object') throw invalidArgument('options', "an object such as { graph: 'encoder' }", options);
    // Loaded on first use: protobuf support costs start-up time most users never need.
    const { writeOnnxModel } = await import('../onnx');
    await writeOnnxModel(file, this.config, this.getWeights(), { graph: options.graph, opset: options.opset });
  }

  /** Writes every graph (or the ones listed) into `dir` as <graph>.onnx; returns the paths. */
  async exportOnnxAll(dir: string, options: { graphs?: OnnxGraphKind[]; opset?: number } = {}): Promise<string[]> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('dir', 'a directory path', dir);
    const { exportAll } = await import('../onnx');
    return exportAll(dir, this.config, this.getWeights(), { graphs: options?.graphs, opset: options?.opset });
  }

  // ---- files --------------------------------------------------------------------------------

  /** Writes the model (config, weights, optimizer state, history) to one file, atomically. */
  async save(file: string): Promise<void> {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    await writeFileAtomic(file, this.#fileBytes());
  }

  saveSync(file: string): void {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    writeFileAtomicSync(file, this.#fileBytes());
  }

  /** Reads a model written by save(); throws ERR_FILE_FORMAT for a truncated or corrupted file. */
  static async load(file: string, options: { threads?: number } = {}): Promise<VAE> {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    return VAE.#fromFile(await readModelFile(file), options);
  }

  static loadSync(file: string, options: { threads?: number } = {}): VAE {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    return VAE.#fromFile(readModelFileSync(file), options);
  }

  static #fromFile(contents: ModelFileContents, options: { threads?: number }): VAE {
    const vae = new VAE({ ...contents.header.config, threads: options?.threads });
    vae.setParameters(contents.params);
    vae.setOptimizerState({ m: contents.m, v: contents.v, step: contents.header.optimizer.step, rngState: contents.rngState });
    vae.setHistory(Array.isArray(contents.header.history) ? contents.header.history : []);
    return vae;
  }

  #fileBytes(): Buffer {
    const { m, v, step, rngState } = this.getOptimizerState();
    return encodeModelFile({
      header: {
        library: 'vae-node',
        version: libraryVersion(),
        config: { ...this.config },
        parameterCount: this.parameterCount,
        optimizer: { step },
        history: this.#history,
        savedAt: new Date().toISOString(),
      },
      params: this.getParameters(),
      m,
      v,
      rngState,
    });
  }

  // ---- internals ----------------------------------------------------------------------------

  #assertIdle(what: string): void {
    if (this.#training) throw new VaeError('ERR_BUSY', `Cannot run ${what} while fit() is running on this model; await fit() first`);
  }

  #input(x: Input, cols: number, name: string): Matrix {
    this.#assertIdle(`inference on ${name}`);
    return toMatrix(x, cols, name);
  }

  // Native blocks of rows write the output while others still read the input: they may share no memory.
  #output(out: Float32Array | undefined, length: number, name: string, input: Float32Array): Float32Array {
    if (out === undefined) return new Float32Array(length);
    if (!(out instanceof Float32Array) || out.length !== length) throw invalidArgument(name, `a Float32Array of ${length} values`, out);
    if (out.buffer === input.buffer && out.byteOffset < input.byteOffset + input.byteLength && input.byteOffset < out.byteOffset + out.byteLength)
      throw invalidArgument(name, 'a Float32Array that shares no memory with x', out);
    return out;
  }

  #eps(eps: Input | undefined, rows: number): Float32Array | null {
    if (eps === undefined) return null;
    const m = toMatrix(eps, this.config.latentDim, 'options.eps');
    if (m.rows !== rows) throw invalidArgument('options.eps', `${rows} rows of ${this.config.latentDim} values (one per input row)`, eps);
    return m.data;
  }

  #evaluation(sums: Float64Array, rows: number): Evaluation {
    const reconstruction = sums[0] / rows;
    const kl = sums[1] / rows;
    return { loss: reconstruction + kl, reconstruction, kl };
  }

  #call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      rethrowNative(err);
    }
  }

  async #callAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.#pendingReads++;
    try {
      return await fn();
    } catch (err) {
      rethrowNative(err);
    } finally {
      this.#pendingReads--;
    }
  }
}
