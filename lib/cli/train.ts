/** `vae train`: fit a VAE on the --data (default: embedded Fashion-MNIST) and write model, history and pictures. */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { VAE } from '../model/vae';
import { FitAbortedError, EpochStats } from '../model/fit';
import { LIKELIHOODS, ACTIVATIONS, Likelihood, Activation } from '../model/types';
import { sliceRows } from '../data';
import { writeFileAtomic } from '../data/io';
import { DataArgs, Dataset, Split, addDataOptions, loadDataset } from './data';
import { choice, integer, integerList, number } from './parse';
import { createProgress, duration, grouped } from './progress';
import { imageSide, writeCurves, writeManifold, writeReconstructions, writeSamples, writeScatter } from './images';
import { EXIT } from './errors';
import { inFile } from './rows';

/**
 * Default epochs: the default run (9000 embedded images, 784-400-20) takes about 40 s on 2 cores
 * at ~7,000 samples/s, and already gives recognisable samples and reconstructions.
 */
export const DEFAULT_EPOCHS = 30;
export const DEFAULT_BATCH_SIZE = 128;
export const DEFAULT_LEARNING_RATE = 1e-3;
export const DEFAULT_OUT_DIR = 'vae-out';
/** Images in the reconstruction and sample figures, and points in the latent scatter. */
const RECON_IMAGES = 30;
const SAMPLE_IMAGES = 64;
const SCATTER_POINTS = 10000;

interface TrainArgs extends DataArgs {
  epochs: number;
  batchSize: number;
  latent: number;
  hidden: number[];
  activation: Activation;
  likelihood: Likelihood;
  beta: number;
  lr: number;
  threads?: number;
  seed?: number;
  out: string;
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a VAE and write <out>/model.vae, history.json and PNG figures (Ctrl-C stops and saves)');
  addDataOptions(cmd, 'training data: an MNIST-style directory (train + t10k: t10k validates), a .npy, .csv or IDX file (its last 10%, at most 1000 rows, validate); default: the embedded Fashion-MNIST (last 1000 rows validate)');
  cmd
    .option('--epochs <n>', 'passes over the training data', integer(1, 1e6), DEFAULT_EPOCHS)
    .option('--batch-size <n>', 'rows per Adam step', integer(1, 1 << 20), DEFAULT_BATCH_SIZE)
    .option('--latent <n>', 'latent dimension (2 also writes manifold.png and latent-scatter.png)', integer(1, 1 << 16), 20)
    .addOption(new Option('--hidden <widths>', 'encoder hidden layer widths, comma-separated (the decoder mirrors them)').argParser(integerList(1, 1 << 16)).default([400], '400'))
    .option('--activation <name>', `hidden activation: ${ACTIVATIONS.join(', ')}`, choice(ACTIVATIONS), 'relu')
    .option('--likelihood <name>', `decoder likelihood: ${LIKELIHOODS.join(', ')}`, choice(LIKELIHOODS), 'bernoulli')
    .option('--beta <x>', 'weight of the KL term (beta-VAE when != 1)', number(0, 1e6), 1)
    .option('--lr <x>', 'Adam learning rate', number(0, 10, true), DEFAULT_LEARNING_RATE)
    .option('--threads <n>', 'native threads (default: all cores); never changes results', integer(1, 1024))
    .option('--seed <n>', 'seed of initialisation, shuffling and noise (default: random, recorded in the model)', integer(0))
    .option('--out <dir>', 'output directory', DEFAULT_OUT_DIR)
    .action(async (args: TrainArgs) => {
      process.exitCode = await train(args);
    });
}

async function train(args: TrainArgs): Promise<number> {
  const say = (line: string) => process.stdout.write(line + '\n');
  const data = await loadDataset(args, { holdOut: true });
  const { train: trainSplit, heldOut } = data;
  say(`data: ${data.source}: ${grouped(trainSplit.x.rows)} training rows${heldOut ? `, ${grouped(heldOut.x.rows)} validation rows` : ''} of ${trainSplit.x.cols} values`);

  const vae = new VAE({
    inputDim: trainSplit.x.cols,
    latentDim: args.latent,
    encoderLayers: args.hidden,
    activation: args.activation,
    likelihood: args.likelihood,
    beta: args.beta,
    seed: args.seed,
    threads: args.threads,
  });
  const c = vae.config;
  const layers = [c.inputDim, ...c.encoderLayers, c.latentDim, ...c.decoderLayers, c.inputDim].join('-');
  say(`model: ${layers} (${c.activation}, ${c.likelihood}, beta ${c.beta}), ${grouped(vae.parameterCount)} parameters, seed ${c.seed}, ${vae.threads} threads`);

  await fsp.mkdir(args.out, { recursive: true });
  const modelFile = path.join(args.out, 'model.vae');
  const historyFile = path.join(args.out, 'history.json');

  const progress = createProgress({ epochs: args.epochs, rows: trainSplit.x.rows, batchSize: args.batchSize, tty: process.stderr.isTTY === true });
  // First Ctrl-C: stop after the current batch and save. Second: quit now (files are written atomically).
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(EXIT.INTERRUPTED);
    progress.log('interrupted: stopping after the current batch and saving (Ctrl-C again to quit without saving)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);

  const started = Date.now();
  let interrupted = false;
  try {
    await vae.fit(trainSplit.x, {
      epochs: args.epochs,
      batchSize: args.batchSize,
      learningRate: args.lr,
      validationData: heldOut?.x,
      signal: controller.signal,
      onBatchEnd: (s) => progress.batch(s),
      onEpochEnd: (s) => progress.epoch(s),
    });
  } catch (err) {
    if (!(err instanceof FitAbortedError)) throw inFile(inFile(err, 'data', trainSplit.origin), 'options.validationData', heldOut?.origin);
    interrupted = true;
  } finally {
    progress.stop();
  }
  const seconds = (Date.now() - started) / 1000;

  // The model keeps the parameters of the last completed batch; save them and the completed epochs.
  await vae.save(modelFile);
  await writeHistory(historyFile, vae, data, seconds, interrupted);
  process.removeListener('SIGINT', onSigint);
  if (interrupted) {
    say(`interrupted after ${plural(vae.history.length, 'completed epoch')}; saved ${modelFile} and ${historyFile}`);
    return EXIT.INTERRUPTED;
  }

  const last = vae.history[vae.history.length - 1];
  say(`trained ${plural(vae.history.length, 'epoch')} in ${duration(seconds)} (${seconds.toFixed(1)} s): loss ${last.loss.toFixed(2)}${last.valLoss === undefined ? '' : `, val loss ${last.valLoss.toFixed(2)}`}`);
  const written = [modelFile, historyFile, ...(await writePictures(vae, data, args.out))];
  say(`wrote ${written.join(', ')}`);
  return EXIT.OK;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

async function writeHistory(file: string, vae: VAE, data: Dataset, seconds: number, interrupted: boolean): Promise<void> {
  const history: readonly EpochStats[] = vae.history;
  const doc = {
    config: vae.config,
    parameterCount: vae.parameterCount,
    data: { source: data.source, trainRows: data.train.x.rows, validationRows: data.heldOut?.x.rows ?? 0 },
    seconds,
    interrupted,
    history,
  };
  // Atomic, so a Ctrl-C during the write never leaves half a JSON file.
  await writeFileAtomic(file, Buffer.from(JSON.stringify(doc, null, 2) + '\n'));
}

/** Writes the figures that make sense for this model; returns their paths. */
async function writePictures(vae: VAE, data: Dataset, out: string): Promise<string[]> {
  const files: string[] = [];
  const curves = path.join(out, 'curves.png');
  await writeCurves(vae.history, curves);
  files.push(curves);
  if (vae.config.latentDim === 2) {
    // The larger labelled split gives the denser, more readable scatter.
    const splits = [data.train, data.heldOut].filter((s): s is Split => s !== undefined);
    const labelled = splits.filter((s) => s.labels !== undefined);
    const pick = (labelled.length ? labelled : splits).reduce((a, b) => (b.x.rows > a.x.rows ? b : a));
    const n = Math.min(SCATTER_POINTS, pick.x.rows);
    const scatter = path.join(out, 'latent-scatter.png');
    await writeScatter(vae, sliceRows(pick.x, 0, n), pick.labels?.subarray(0, n), data.classNames, scatter);
    files.push(scatter);
  }
  if (imageSide(vae.config.inputDim) === undefined) {
    process.stdout.write(`note: no image figures: inputDim ${vae.config.inputDim} is not a perfect square\n`);
    return files;
  }
  const shown: Split = data.heldOut ?? data.train; // unseen rows show generalisation, not memory
  const recon = path.join(out, 'reconstructions.png');
  await writeReconstructions(vae, shown.x, RECON_IMAGES, recon);
  const samples = path.join(out, 'samples.png');
  await writeSamples(vae, SAMPLE_IMAGES, vae.config.seed, samples);
  files.push(recon, samples);
  if (vae.config.latentDim === 2) {
    const manifold = path.join(out, 'manifold.png');
    await writeManifold(vae, manifold);
    files.push(manifold);
  }
  return files;
}
