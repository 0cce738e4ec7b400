/**
 * The raw native surface, declared once. Only lib/ talks to it; users see the
 * classes that wrap it. [sync] methods run on the calling thread; [async]
 * methods run on libuv's pool and return Promises. Typed arrays are read and
 * written in place (no copies), honouring byteOffset.
 */
import * as fs from 'fs';
import * as path from 'path';
import { badValueError, VaeError, type BadValue } from '../errors';

export interface NativeModelConfig {
  inputDim: number;
  latentDim: number;
  encoderLayers: readonly number[];
  decoderLayers: readonly number[];
  activation: number; // index into ACTIVATIONS
  likelihood: number; // 0 bernoulli, 1 gaussian
  beta: number;
  seed: number;
  threads: number;
}

export interface AdamHyper {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export interface NativeModel {
  readonly paramCount: number;
  /** [sync] */ setThreads(threads: number): void;
  /** [sync] */ copyParams(dst: Float32Array): void;
  /** [sync] */ setParams(src: Float32Array): void;
  /** [sync] returns the Adam step; rngState receives 12 words */
  copyOptimizer(m: Float32Array, v: Float32Array, rngState: Uint32Array): number;
  /** [sync] */ setOptimizer(m: Float32Array, v: Float32Array, rngState: Uint32Array, step: number): void;
  /** [sync] */ encode(x: Float32Array, rows: number, mean: Float32Array, logVar: Float32Array | null): void;
  /**
   * [async] rejects with ERR_NON_FINITE naming (as `name`) the row and column of the first NaN or
   * Infinity, and for a bernoulli model with ERR_INVALID_ARGUMENT naming the first value outside [0, 1]
   */
  checkTrainingDataAsync(x: Float32Array, rows: number, name: string): Promise<void>;
  /** [async] */ encodeAsync(x: Float32Array, rows: number, mean: Float32Array, logVar: Float32Array | null): Promise<void>;
  /** [sync] */ decode(z: Float32Array, rows: number, out: Float32Array): void;
  /** [async] */ decodeAsync(z: Float32Array, rows: number, out: Float32Array): Promise<void>;
  /** [sync] eps null: z = mean */
  reconstruct(x: Float32Array, rows: number, eps: Float32Array | null, out: Float32Array): void;
  /** [async] */ reconstructAsync(x: Float32Array, rows: number, eps: Float32Array | null, out: Float32Array): Promise<void>;
  /** [sync] returns [reconstruction sum, KL sum] */
  evaluate(x: Float32Array, rows: number, seed: number): Float64Array;
  /** [async] */ evaluateAsync(x: Float32Array, rows: number, seed: number): Promise<Float64Array>;
  /** [async] importance-weighted log p(x) estimate summed over rows */
  logLikelihoodAsync(x: Float32Array, rows: number, samples: number, seed: number): Promise<number>;
  /** [sync] new permutation from the training RNG */
  beginEpoch(rows: number, shuffle: boolean): void;
  /** [async] trains `count` batches; stats gets [loss, rec, kl, step seconds] per batch; resolves with the number run */
  trainAsync(
    data: Float32Array, rows: number, batchSize: number, firstBatch: number, count: number,
    hyper: AdamHyper, stats: Float64Array,
  ): Promise<number>;
  /** [sync] asks a running trainAsync to stop after its current batch */
  cancel(): void;
  /** [sync] loss sums with given noise; grads (optional) receives the gradient of the per-sample mean loss */
  lossAndGradients(x: Float32Array, rows: number, eps: Float32Array, grads: Float32Array | null): Float64Array;
}

export interface NativeOps {
  /**
   * backend: 0 auto, 1 scalar, 2 avx2, 3 reference triple loop, 4 avx512 (bit-identical to avx2).
   * Optional fused epilogue, in order:
   * + bias[j], relu (1), then zero where reluOut (shaped like C, row stride ldc) is <= 0.
   * prepack: 0 reads B; 1 (shallow) or 2 (deep K blocks) packs op(B) first, as the model's layers do.
   */
  sgemm(
    transA: number, transB: number, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number,
    threads: number, backend: number, bias?: Float32Array | null, relu?: number, reluOut?: Float32Array | null,
    prepack?: number,
  ): void;
  denseForward(out: Float32Array, input: Float32Array, W: Float32Array, b: Float32Array, B: number, K: number, N: number): void;
  denseBackward(
    din: Float32Array | null, dW: Float32Array, db: Float32Array, dout: Float32Array, input: Float32Array,
    W: Float32Array, B: number, K: number, N: number,
  ): void;
  activationForward(kind: number, out: Float32Array, input: Float32Array): void;
  activationBackward(kind: number, din: Float32Array, dout: Float32Array, out: Float32Array): void;
  gaussianHeadForward(mean: Float32Array, logvar: Float32Array, head: Float32Array, B: number, d: number): void;
  gaussianHeadBackward(dhead: Float32Array, dmean: Float32Array, dlogvar: Float32Array, B: number, d: number): void;
  reparameterizeForward(z: Float32Array, mean: Float32Array, logvar: Float32Array, eps: Float32Array): void;
  reparameterizeBackward(dmean: Float32Array, dlogvar: Float32Array, dz: Float32Array, logvar: Float32Array, eps: Float32Array): void;
  klForward(mean: Float32Array, logvar: Float32Array): number;
  klBackward(dmean: Float32Array, dlogvar: Float32Array, mean: Float32Array, logvar: Float32Array, scale: number): void;
  /** kind: 0 bernoulli (BCE from logits), 1 gaussian (SSE / 2) */
  lossForward(kind: number, pred: Float32Array, target: Float32Array): number;
  lossBackward(kind: number, dpred: Float32Array, pred: Float32Array, target: Float32Array, scale: number): void;
  /** [sync] GFLOP/s of independent FMA chains on `threads` threads for about `seconds` */
  fmaPeak(threads: number, seconds: number): number;
  /** kernel: 0 auto, 1 portable, 2 avx2 (throws without AVX2/FMA) */
  adamUpdate(
    params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, hyper: AdamHyper, step: number,
    threads: number, kernel?: number,
  ): void;
  /** size in floats of the calling thread's inference scratch (for tests) */
  threadScratchFloats(): number;
  /** a hidden layer's activation (kind as in activationForward) as training and inference apply it; kernel as in adamUpdate */
  activationFused(kind: number, out: Float32Array, input: Float32Array, kernel: number): void;
  /** its backward, din = dout * act'(x) from out = act(x), as training applies it */
  activationBackwardFused(kind: number, din: Float32Array, dout: Float32Array, out: Float32Array, kernel: number): void;
  /** fused Bernoulli loss + gradient as used in training; returns the loss sum */
  bceFused(dpred: Float32Array, pred: Float32Array, target: Float32Array, scale: number, kernel: number): number;
  /** the fused latent layer (head split + reparameterization + KL) -> KL sum; kernel as in adamUpdate */
  latentForward(mean: Float32Array, logvar: Float32Array, z: Float32Array, head: Float32Array, eps: Float32Array, B: number, d: number, kernel: number): number;
  /** its backward: dhead [B,2d] from dz */
  latentBackward(dhead: Float32Array, dz: Float32Array, mean: Float32Array, logvar: Float32Array, eps: Float32Array, klScale: number, B: number, d: number, kernel: number): void;
}

export interface NativeBinding {
  NativeModel: new (config: NativeModelConfig) => NativeModel;
  ops: NativeOps;
  cpuInfo(): { avx2Fma: boolean; avx512f: boolean; gemmBackend: string; hardwareThreads: number };
}

/** The package root: the nearest directory above this file with our package.json. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      try {
        if (JSON.parse(fs.readFileSync(candidate, 'utf8')).name === 'vae-node') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new VaeError('ERR_NATIVE', `vae-node: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
}

let cached: NativeBinding | undefined;

/**
 * Loads the addon: the file $VAE_NODE_BINARY names (relative to the working directory) when
 * set, and nothing else, so that a run meant for another build (sanitizers, profiling) never
 * silently uses the default one; otherwise the first of prebuilds/<platform>-<arch>,
 * build/Release (node-gyp), build-cmake/Release and build/Debug (cmake-js developer builds)
 * that loads. On failure one error lists every path tried, why each failed, and how to rebuild.
 */
export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const root = packageRoot();
  const requested = process.env.VAE_NODE_BINARY;
  const candidates = requested
    ? [path.resolve(requested)]
    : [
        path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'vae_native.node'),
        path.join(root, 'build', 'Release', 'vae_native.node'),
        path.join(root, 'build-cmake', 'Release', 'vae_native.node'),
        path.join(root, 'build-cmake', 'Debug', 'vae_native.node'),
        path.join(root, 'build', 'Debug', 'vae_native.node'),
      ];
  const failures: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      failures.push(`  ${file}: not found`);
      continue;
    }
    try {
      cached = require(file) as NativeBinding;
      return cached;
    } catch (err) {
      failures.push(`  ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (requested) {
    throw new VaeError('ERR_NATIVE', `vae-node could not load the native addon that VAE_NODE_BINARY names:\n${failures.join('\n')}`);
  }
  throw new VaeError(
    'ERR_NATIVE',
    `vae-node could not load its native addon. Tried:\n${failures.join('\n')}\n` +
      `Rebuild it with \`npm rebuild vae-node\` (or \`npx node-gyp rebuild\` in ${root}); ` +
      'building needs python3, make and a C++17 compiler.',
  );
}

/** Re-throws an error from native code as a VaeError with the same code. */
export function rethrowNative(err: unknown): never {
  throw toVaeError(err);
}

/**
 * err itself when it is a VaeError, else a VaeError with its code (ERR_NATIVE when it has none of
 * ours). A native error about one value of a data matrix carries the fields of a BadValue, from
 * which the message is composed.
 */
export function toVaeError(err: unknown): VaeError {
  if (err instanceof VaeError) return err;
  const e = err as { code?: string; message?: string; badValue?: BadValue };
  if (isBadValue(e?.badValue)) return badValueError(e.badValue, undefined, err);
  const codes = ['ERR_INVALID_ARGUMENT', 'ERR_NON_FINITE', 'ERR_BUSY', 'ERR_ABORTED', 'ERR_DIVERGED', 'ERR_NATIVE'];
  const code = codes.includes(e?.code ?? '') ? (e.code as VaeError['code']) : 'ERR_NATIVE';
  return new VaeError(code, e?.message ?? String(err), { cause: err });
}

function isBadValue(value: unknown): value is BadValue {
  const v = value as BadValue | undefined;
  return (
    typeof v === 'object' && v !== null && (v.fault === 'non-finite' || v.fault === 'outside [0, 1]') &&
    typeof v.argument === 'string' && Number.isSafeInteger(v.row) && Number.isSafeInteger(v.column) && typeof v.value === 'number'
  );
}
