import { checkStableOutput, stableArray, stableInput, whileAttached } from '../data/async_buffers';
import { allocateFloats, Matrix, toMatrix } from '../data/matrix';
import { invalidArgument, VaeError } from '../errors';
import { loadBinding, NativeModel, rethrowNative, toVaeError } from '../native/binding';
import { normalDraws, randomSeed } from '../serve/normal';
import { checkInteger, checkOptions, checkThreads, layerShapes, resolveConfig, VaeOptions } from './config';
import { CallbackFailure, EpochStats, FIT_OPTION_KEYS, FitAbortedError, FitOptions, runFit } from './fit';
import { checkOptimizerState, OptimizerState } from './optimizer_state';
import { libraryVersion } from '../version';
import type { OnnxGraphKind } from '../onnx';
import { encodeModelFile, ModelFileContents, readModelFile, readModelFileSync } from './file_format';
import { writeFileAtomic, writeFileAtomicSync } from '../data/io';
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

export type { OptimizerState } from './optimizer_state';

/**
 * A variational auto-encoder with MLP encoder and decoder, trained natively.
 *
 * Sync methods (`encode`, `decode`, ...) run on the calling thread: use them for
 * small batches. Their `*Async` twins run on a native worker thread and leave the
 * event loop free: use them for large batches in servers. `fit` is always async.
 * An async call reads its input arrays in place while it runs: keep their buffers
 * attached (not transferred) until it settles.
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
    // Frozen all the way down: saving and exporting read it back.
    this.config = Object.freeze({ ...config, encoderLayers: Object.freeze([...config.encoderLayers]) as number[], decoderLayers: Object.freeze([...config.decoderLayers]) as number[] });
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
    this.#assertNoPendingReads('setting threads');
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
   * keeps the parameters of the last completed batch. Every rejection but the caller's own
   * (an error thrown by onBatchEnd or onEpochEnd, passed on as it is) is a VaeError whose
   * `history` holds the epochs this call completed.
   */
  async fit(data: Input, options: FitOptions = {}): Promise<EpochStats[]> {
    if (this.#training) throw new VaeError('ERR_BUSY', 'fit() is already running on this model; wait for it to settle');
    this.#assertNoPendingReads('fit()');
    const o = checkOptions('options', options, FIT_OPTION_KEYS);
    const train = stableInput(toMatrix(data, this.config.inputDim, 'data'));
    const validation = o.validationData === undefined ? undefined : stableInput(toMatrix(o.validationData, this.config.inputDim, 'options.validationData'));
    this.#training = true;
    try {
      const history = await runFit(this.#native, this.config, train, validation, o);
      this.#history.push(...history);
      return history;
    } catch (err) {
      const partial = (err as { history?: EpochStats[] }).history ?? [];
      this.#history.push(...partial);
      if (err instanceof CallbackFailure) throw err.error;
      if (err instanceof FitAbortedError) throw err;
      throw Object.assign(toVaeError(err), { history: partial });
    } finally {
      this.#training = false;
    }
  }

  // ---- inference --------------------------------------------------------------------------

  /** Mean and log-variance of q(z|x) for each row. [sync] */
  encode(x: Input): Encoding {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = allocateFloats(input.rows * this.config.latentDim, 'x');
    const logVar = allocateFloats(input.rows * this.config.latentDim, 'x');
    this.#call(() => this.#native.encode(input.data, input.rows, mean, logVar));
    return { mean, logVar };
  }

  /** encode() on a worker thread. */
  async encodeAsync(x: Input): Promise<Encoding> {
    const input = this.#asyncInput(x, this.config.inputDim, 'x');
    const mean = allocateFloats(input.rows * this.config.latentDim, 'x');
    const logVar = allocateFloats(input.rows * this.config.latentDim, 'x');
    await this.#callAsync(() => this.#native.encodeAsync(input.data, input.rows, mean, logVar), { x: input.data });
    return { mean, logVar };
  }

  /** Mean of q(z|x) only (skips the log-variance output copy). [sync] */
  encodeMean(x: Input): Float32Array {
    const input = this.#input(x, this.config.inputDim, 'x');
    const mean = allocateFloats(input.rows * this.config.latentDim, 'x');
    this.#call(() => this.#native.encode(input.data, input.rows, mean, null));
    return mean;
  }

  /**
   * encodeMean() on a worker thread; `out` (optional, sharing no memory with `x`) receives
   * the means in place. If the call rejects (NaN or infinity in `x`), `out` holds partial results.
   */
  async encodeMeanAsync(x: Input, out?: Float32Array): Promise<Float32Array> {
    const input = this.#asyncInput(x, this.config.inputDim, 'x');
    const mean = this.#output(out, input.rows * this.config.latentDim, 'out', input.data);
    await this.#callAsync(() => this.#native.encodeAsync(input.data, input.rows, mean, null), { x: input.data, out: mean });
    return mean;
  }

  /** Decoder output for each latent row: probabilities (bernoulli) or means (gaussian). [sync] */
  decode(z: Input): Float32Array {
    const input = this.#input(z, this.config.latentDim, 'z');
    const out = allocateFloats(input.rows * this.config.inputDim, 'z');
    this.#call(() => this.#native.decode(input.data, input.rows, out));
    return out;
  }

  /** decode() on a worker thread. */
  async decodeAsync(z: Input): Promise<Float32Array> {
    const input = this.#asyncInput(z, this.config.latentDim, 'z');
    const out = allocateFloats(input.rows * this.config.inputDim, 'z');
    await this.#callAsync(() => this.#native.decodeAsync(input.data, input.rows, out), { z: input.data });
    return out;
  }

  /**
   * decode(encode(x)): by default through z = mean (deterministic); with `eps`
   * ([rows, latentDim] noise) through z = mean + exp(logVar / 2) * eps. [sync]
   */
  reconstruct(x: Input, options: { eps?: Input } = {}): Float32Array {
    const input = this.#input(x, this.config.inputDim, 'x');
    const eps = this.#eps(checkOptions('options', options, ['eps']).eps, input.rows);
    const out = allocateFloats(input.rows * this.config.inputDim, 'x');
    this.#call(() => this.#native.reconstruct(input.data, input.rows, eps, out));
    return out;
  }

  /** reconstruct() on a worker thread. */
  async reconstructAsync(x: Input, options: { eps?: Input } = {}): Promise<Float32Array> {
    const input = this.#asyncInput(x, this.config.inputDim, 'x');
    const given = this.#eps(checkOptions('options', options, ['eps']).eps, input.rows);
    const eps = given && stableArray(given);
    const out = allocateFloats(input.rows * this.config.inputDim, 'x');
    await this.#callAsync(() => this.#native.reconstructAsync(input.data, input.rows, eps, out), { x: input.data, 'options.eps': eps });
    return out;
  }

  /**
   * n draws from the model: decode(eps) with eps ~ N(0, I) from `seed`. The same seed
   * gives the same draws as OnnxVAE.sample. [sync]
   */
  sample(n: number, options: { seed?: number } = {}): Float32Array {
    const z = this.#sampleNoise(n, options);
    const out = allocateFloats(n * this.config.inputDim, 'n');
    this.#call(() => this.#native.decode(z, n, out));
    return out;
  }

  /** sample() on a worker thread (the noise is drawn on the calling thread). */
  async sampleAsync(n: number, options: { seed?: number } = {}): Promise<Float32Array> {
    const z = this.#sampleNoise(n, options);
    const out = allocateFloats(n * this.config.inputDim, 'n');
    await this.#callAsync(() => this.#native.decodeAsync(z, n, out), {});
    return out;
  }

  /**
   * Negative ELBO (reconstruction + KL, whatever beta is), reconstruction and KL as
   * per-sample means over the rows of x,
   * with one draw of z per row from `seed` (default 0, so repeated calls agree). [sync]
   */
  evaluate(x: Input, options: { seed?: number } = {}): Evaluation {
    const input = this.#input(x, this.config.inputDim, 'x');
    const seed = checkInteger('options.seed', checkOptions('options', options, ['seed']).seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const sums = this.#call(() => this.#native.evaluate(input.data, input.rows, seed));
    return this.#evaluation(sums, input.rows);
  }

  /** evaluate() on a worker thread. */
  async evaluateAsync(x: Input, options: { seed?: number } = {}): Promise<Evaluation> {
    const input = this.#asyncInput(x, this.config.inputDim, 'x');
    const seed = checkInteger('options.seed', checkOptions('options', options, ['seed']).seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const sums = await this.#callAsync(() => this.#native.evaluateAsync(input.data, input.rows, seed), { x: input.data });
    return this.#evaluation(sums, input.rows);
  }

  /**
   * Importance-weighted estimate of log p(x) per sample (IWAE, Burda et al. 2016):
   * log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with K = `samples` draws per row from
   * `seed`. A lower bound of log p(x) that tightens as K grows (K = 1 is the ELBO);
   * the same constant-free likelihoods as the losses. Runs on a worker thread.
   */
  async logLikelihoodAsync(x: Input, options: { samples?: number; seed?: number } = {}): Promise<number> {
    const input = this.#asyncInput(x, this.config.inputDim, 'x');
    const o = checkOptions('options', options, ['samples', 'seed']);
    const samples = checkInteger('options.samples', o.samples ?? 100, 1, 1 << 20);
    const seed = checkInteger('options.seed', o.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const total = await this.#callAsync(() => this.#native.logLikelihoodAsync(input.data, input.rows, samples, seed), { x: input.data });
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
    this.#assertNoPendingReads('setParameters()');
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

  /**
   * Replaces the Adam moments, step and training RNG state (as getOptimizerState() returns
   * them): m finite, v finite and non-negative, so that training cannot turn them into NaN.
   */
  setOptimizerState(state: OptimizerState): void {
    this.#assertIdle('setOptimizerState()');
    this.#assertNoPendingReads('setOptimizerState()');
    const { m, v, step, rngState } = checkOptimizerState(state, this.parameterCount);
    this.#call(() => this.#native.setOptimizer(m, v, rngState, step));
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
    checkOptions('options', options, ['graph', 'opset']);
    // Loaded on first use: protobuf support costs start-up time most users never need.
    const { writeOnnxModel } = await import('../onnx');
    await writeOnnxModel(file, this.config, this.getWeights(), { graph: options.graph, opset: options.opset });
  }

  /** Writes every graph (or the ones listed) into `dir` as <graph>.onnx; returns the paths. */
  async exportOnnxAll(dir: string, options: { graphs?: OnnxGraphKind[]; opset?: number } = {}): Promise<string[]> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('dir', 'a directory path', dir);
    const o = checkOptions('options', options, ['graphs', 'opset']);
    const { exportAll } = await import('../onnx');
    return exportAll(dir, this.config, this.getWeights(), { graphs: o.graphs, opset: o.opset });
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
    const threads = VAE.#loadThreads(options);
    return VAE.#fromFile(await readModelFile(file), threads, file);
  }

  static loadSync(file: string, options: { threads?: number } = {}): VAE {
    if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'a file path', file);
    const threads = VAE.#loadThreads(options);
    return VAE.#fromFile(readModelFileSync(file), threads, file);
  }

  static #loadThreads(options: { threads?: number } | undefined): number | undefined {
    const { threads } = checkOptions('options', options, ['threads']);
    return threads === undefined ? undefined : checkThreads('options.threads', threads);
  }

  // Everything but `threads` comes from the file: a value the model refuses (NaN weights, a
  // negative second moment) makes the file invalid, whatever its checksum says.
  static #fromFile(contents: ModelFileContents, threads: number | undefined, file: string): VAE {
    try {
      const vae = new VAE({ ...contents.header.config, threads });
      vae.setParameters(contents.params);
      vae.setOptimizerState({ m: contents.m, v: contents.v, step: contents.header.optimizer.step, rngState: contents.rngState });
      vae.setHistory(Array.isArray(contents.header.history) ? contents.header.history : []);
      return vae;
    } catch (err) {
      if (!(err instanceof VaeError) || (err.code !== 'ERR_INVALID_ARGUMENT' && err.code !== 'ERR_NON_FINITE')) throw err;
      throw new VaeError('ERR_FILE_FORMAT', `${file} is not a valid vae-node model file: ${err.message}`, { cause: err });
    }
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

  // Async inference reads the parameters and threads: what changes them waits for it.
  #assertNoPendingReads(what: string): void {
    if (this.#pendingReads > 0) throw new VaeError('ERR_BUSY', `async inference calls are still running on this model; await them before ${what}`);
  }

  #input(x: Input, cols: number, name: string): Matrix {
    this.#assertIdle(`inference on ${name}`);
    return toMatrix(x, cols, name);
  }

  #asyncInput(x: Input, cols: number, name: string): Matrix {
    return stableInput(this.#input(x, cols, name));
  }

  // eps ~ N(0, I) for n rows of sample().
  #sampleNoise(n: number, options: { seed?: number } | undefined): Float32Array {
    this.#assertIdle('sample()');
    checkInteger('n', n, 1, 1 << 24);
    const { seed } = checkOptions('options', options, ['seed']);
    const from = seed === undefined ? randomSeed() : checkInteger('options.seed', seed, 0, Number.MAX_SAFE_INTEGER);
    return normalDraws(n * this.config.latentDim, from, 'n');
  }

  // Native blocks of rows write the output while others still read the input: they may share no memory.
  #output(out: Float32Array | undefined, length: number, name: string, input: Float32Array): Float32Array {
    if (out === undefined) return allocateFloats(length, 'x');
    if (!(out instanceof Float32Array) || out.length !== length) throw invalidArgument(name, `a Float32Array of ${length} values`, out);
    checkStableOutput(out, name);
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

  // `arrays`: the call's arguments that it reads or writes in place, by name; when one was
  // detached meanwhile, the call's results are void (see data/async_buffers.ts).
  async #callAsync<T>(fn: () => Promise<T>, arrays: Record<string, Float32Array | null>): Promise<T> {
    this.#pendingReads++;
    try {
      return await whileAttached(arrays, fn).catch(rethrowNative);
    } finally {
      this.#pendingReads--;
    }
  }
}
