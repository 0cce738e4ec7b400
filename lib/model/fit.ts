import { whileAttached } from '../data/async_buffers';
import { Matrix } from '../data/matrix';
import { invalidArgument, VaeError } from '../errors';
import { AdamHyper, NativeModel } from '../native/binding';
import { checkInteger, checkNumber } from './config';
import { VaeConfig } from './types';

/** Options of `vae.fit(data, options)`. */
export interface FitOptions {
  /** Passes over the data (default 10). */
  epochs?: number;
  /** Rows per Adam step (default 128); an epoch's last batch may be shorter. */
  batchSize?: number;
  /** Adam step size (default 1e-3). */
  learningRate?: number;
  /** Adam moment decay rates (defaults 0.9 and 0.999) and epsilon (default 1e-8). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay as in AdamW (default 0). */
  weightDecay?: number;
  /** Reshuffle rows every epoch (default true). */
  shuffle?: boolean;
  /** Rows evaluated after each epoch (valLoss, valReconstruction, valKl). */
  validationData?: Float32Array | Matrix;
  /** Stops training after the current batch; fit() then rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Called after each epoch; may return a Promise, which is awaited. */
  onEpochEnd?: (stats: EpochStats) => void | Promise<void>;
  /** Called for each batch, in order, shortly after it ran (batches are reported in groups). */
  onBatchEnd?: (stats: BatchStats) => void;
}

/** One batch: per-sample means; loss = reconstruction + beta * kl. */
export interface BatchStats {
  epoch: number;
  batch: number;
  batchesPerEpoch: number;
  loss: number;
  reconstruction: number;
  kl: number;
  /** Wall time of the batch's training step (forward, backward, Adam), measured natively. */
  seconds: number;
}

/** One epoch: per-sample means over the epoch's rows; loss = reconstruction + beta * kl. */
export interface EpochStats {
  epoch: number;
  loss: number;
  reconstruction: number;
  kl: number;
  valLoss?: number;
  valReconstruction?: number;
  valKl?: number;
  seconds: number;
  samplesPerSecond: number;
}

/** The keys of FitOptions, for checkOptions (vae.fit checks them before runFit). */
export const FIT_OPTION_KEYS = [
  'epochs', 'batchSize', 'learningRate', 'beta1', 'beta2', 'epsilon', 'weightDecay', 'shuffle', 'validationData', 'signal', 'onEpochEnd', 'onBatchEnd',
] as const;

/**
 * An error thrown by the caller's own onBatchEnd, or thrown or rejected with by onEpochEnd: fit() rejects
 * with `error` itself, untouched, after keeping the epochs in `history`.
 */
export class CallbackFailure {
  constructor(readonly error: unknown, readonly history: EpochStats[]) {}
}

/** Rejection of an aborted fit(): `history` holds the epochs that completed. */
export class FitAbortedError extends VaeError {
  readonly history: EpochStats[];
  constructor(history: EpochStats[], batch: number, epoch: number) {
    super('ERR_ABORTED', `fit() was aborted during epoch ${epoch} after batch ${batch}; the model keeps the parameters of the last completed batch`);
    this.history = history;
  }
}

// Batches per native call: enough for ~100 ms of work so the overhead of a
// round trip to the event loop stays negligible, few enough that progress and
// abort are prompt.
const TARGET_CHUNK_SECONDS = 0.1;
// trainAsync writes [loss, reconstruction, kl, seconds] per batch.
const STATS_PER_BATCH = 4;
const MAX_CHUNK_BATCHES = 4096;

function resolveFitOptions(o: FitOptions) {
  const hyper: AdamHyper = {
    learningRate: checkNumber('options.learningRate', o.learningRate ?? 1e-3, 0, 10, true),
    beta1: checkNumber('options.beta1', o.beta1 ?? 0.9, 0, 1 - 1e-9),
    beta2: checkNumber('options.beta2', o.beta2 ?? 0.999, 0, 1 - 1e-12),
    epsilon: checkNumber('options.epsilon', o.epsilon ?? 1e-8, 0, 1, true),
    weightDecay: checkNumber('options.weightDecay', o.weightDecay ?? 0, 0, 1),
  };
  const checkCallback = (name: string, f: unknown) => {
    if (f !== undefined && typeof f !== 'function') throw invalidArgument(`options.${name}`, 'a function', f);
  };
  checkCallback('onEpochEnd', o.onEpochEnd);
  checkCallback('onBatchEnd', o.onBatchEnd);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgument('options.signal', 'an AbortSignal', o.signal);
  if (o.shuffle !== undefined && typeof o.shuffle !== 'boolean') throw invalidArgument('options.shuffle', 'a boolean', o.shuffle);
  return {
    epochs: checkInteger('options.epochs', o.epochs ?? 10, 1, 1e6),
    batchSize: checkInteger('options.batchSize', o.batchSize ?? 128, 1, 1 << 20),
    shuffle: o.shuffle ?? true,
    hyper,
  };
}


/** The training loop: the native side runs groups of batches, this side reports and stops. */
export async function runFit(
  native: NativeModel, config: VaeConfig, train: Matrix, validation: Matrix | undefined, options: FitOptions,
): Promise<EpochStats[]> {
  const { epochs, batchSize, shuffle, hyper } = resolveFitOptions(options);
  const { signal, onEpochEnd, onBatchEnd } = options;
  const history: EpochStats[] = [];
  // The caller's callbacks: what they throw (or onEpochEnd rejects with) is theirs, not a
  // training failure. onBatchEnd runs synchronously, a group's batches back to back.
  const callback = (run: () => void) => {
    try {
      run();
    } catch (err) {
      throw new CallbackFailure(err, history);
    }
  };
  const callbackAsync = async (run: () => void | Promise<void>) => {
    try {
      await run();
    } catch (err) {
      throw new CallbackFailure(err, history);
    }
  };
  // The native calls read the data in place: a transfer of its buffer before or during one voids it.
  const nativeCall = <T>(call: () => Promise<T>): Promise<T> => whileAttached({ data: train.data, 'options.validationData': validation?.data }, call);
  // Native, multi-threaded and off the event loop: the data can be hundreds of megabytes.
  await nativeCall(() => native.checkTrainingDataAsync(train.data, train.rows, 'data'));
  if (validation) await nativeCall(() => native.checkTrainingDataAsync(validation.data, validation.rows, 'options.validationData'));

  const batchesPerEpoch = Math.ceil(train.rows / batchSize);
  const onAbort = () => native.cancel();
  signal?.addEventListener('abort', onAbort);
  try {
    let chunk = 1;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      if (signal?.aborted) throw new FitAbortedError(history, 0, epoch);
      const started = process.hrtime.bigint();
      native.beginEpoch(train.rows, shuffle);
      let loss = 0, reconstruction = 0, kl = 0;
      for (let batch = 0; batch < batchesPerEpoch; ) {
        const count = Math.min(chunk, batchesPerEpoch - batch);
        const stats = new Float64Array(STATS_PER_BATCH * count);
        const chunkStart = process.hrtime.bigint();
        const done = await nativeCall(() => native.trainAsync(train.data, train.rows, batchSize, batch, count, hyper, stats));
        const chunkSeconds = Number(process.hrtime.bigint() - chunkStart) / 1e9;
        for (let i = 0; i < done; i++) {
          const b = batch + i;
          const rows = Math.min(batchSize, train.rows - b * batchSize);
          const [batchLoss, batchReconstruction, batchKl, seconds] = stats.subarray(STATS_PER_BATCH * i, STATS_PER_BATCH * (i + 1));
          loss += batchLoss * rows;
          reconstruction += batchReconstruction * rows;
          kl += batchKl * rows;
          if (onBatchEnd) callback(() => onBatchEnd({ epoch, batch: b + 1, batchesPerEpoch, loss: batchLoss, reconstruction: batchReconstruction, kl: batchKl, seconds }));
        }
        batch += done;
        if (done < count || signal?.aborted) throw new FitAbortedError(history, batch, epoch);
        // Grow or shrink the group towards TARGET_CHUNK_SECONDS of work.
        const perBatch = chunkSeconds / Math.max(1, done);
        chunk = Math.max(1, Math.min(MAX_CHUNK_BATCHES, Math.round(TARGET_CHUNK_SECONDS / Math.max(perBatch, 1e-6))));
      }
      const stats: EpochStats = {
        epoch,
        loss: loss / train.rows,
        reconstruction: reconstruction / train.rows,
        kl: kl / train.rows,
        seconds: 0,
        samplesPerSecond: 0,
      };
      const trainSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (validation) {
        const sums = await nativeCall(() => native.evaluateAsync(validation.data, validation.rows, config.seed));
        stats.valReconstruction = sums[0] / validation.rows;
        stats.valKl = sums[1] / validation.rows;
        stats.valLoss = stats.valReconstruction + config.beta * stats.valKl;
      }
      stats.seconds = Number(process.hrtime.bigint() - started) / 1e9;
      stats.samplesPerSecond = train.rows / trainSeconds;
      history.push(stats);
      if (onEpochEnd) await callbackAsync(() => onEpochEnd(stats));
    }
    return history;
  } catch (err) {
    if (err instanceof FitAbortedError || err instanceof CallbackFailure) throw err;
    const e = err as { code?: string; history?: EpochStats[] };
    if (e && typeof e === 'object') e.history = history;
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
