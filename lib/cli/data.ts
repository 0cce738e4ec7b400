/**
 * Resolves the --data argument to matrices. Without --data the embedded Fashion-MNIST (10000
 * images) is used, its last HOLDOUT_ROWS rows held out, so `vae train` works out of the box and
 * `vae eval` / `vae reconstruct` default to the same unseen rows.
 */
import * as path from 'path';
import { Command, Option } from 'commander';
import { FASHION_MNIST_CLASSES, Labels, Matrix, loadEmbeddedFashionMnist, loadMatrix, sliceRows } from '../data';
import { integer, scale } from './parse';
import { UsageError } from './errors';
import { described, fileRows, RowOrigin, shifted } from './rows';

/** Rows held out for validation from the embedded data or a single data file (at most 10% of it). */
export const HOLDOUT_ROWS = 1000;

export interface DataArgs {
  data?: string;
  scale: number | 'auto';
  labels?: string;
  limit?: number;
}

export interface Split {
  x: Matrix;
  labels?: Labels;
  /** Where x's rows come from, for errors that name a row. */
  origin?: RowOrigin;
}

export interface Dataset {
  /** Human-readable origin, for log lines. */
  source: string;
  train: Split;
  /** The test split of an MNIST directory, or rows held out from the end of the data. */
  heldOut?: Split;
  /** Legend names when the data is known to be Fashion-MNIST. */
  classNames?: readonly string[];
}

/** Adds --data, --scale, --labels and --limit to a command. */
export function addDataOptions(cmd: Command, dataHelp: string): Command {
  return cmd
    .option('--data <path>', dataHelp)
    .option('--scale <number|auto>', 'multiplier for the data values; auto divides uint8 data (and 0..255 integer CSVs) by 255', scale, 'auto')
    .option('--labels <file>', 'integer labels, one per data row (IDX, .npy or one-column CSV)')
    .addOption(new Option('--limit <rows>', 'use only the first <rows> rows of each split (for quick tests)').argParser(integer(1)));
}

function take(split: Split, limit: number | undefined): Split {
  if (limit === undefined || limit >= split.x.rows) return split;
  return { x: sliceRows(split.x, 0, limit), labels: split.labels?.subarray(0, limit), origin: split.origin };
}

function splitTail(split: Split, rows: number): { head: Split; tail: Split } {
  const n = split.x.rows;
  return {
    head: { x: sliceRows(split.x, 0, n - rows), labels: split.labels?.subarray(0, n - rows), origin: split.origin },
    tail: { x: sliceRows(split.x, n - rows, n), labels: split.labels?.subarray(n - rows, n), origin: shifted(split.origin, n - rows) },
  };
}

/**
 * Loads the data and splits it: an MNIST directory gives train/test; the embedded set and a
 * single file hold out their last rows (HOLDOUT_ROWS, at most 10%) unless `holdOut` is false.
 */
export async function loadDataset(args: DataArgs, options: { holdOut: boolean }): Promise<Dataset> {
  let dataset: Dataset;
  if (args.data === undefined) {
    if (args.scale !== 'auto' || args.labels !== undefined) {
      throw new UsageError('--scale and --labels need --data (the embedded Fashion-MNIST is already scaled to [0, 1] and labelled)');
    }
    const { x, labels } = await loadEmbeddedFashionMnist();
    const { head, tail } = splitTail({ x, labels, origin: described('the embedded Fashion-MNIST') }, HOLDOUT_ROWS);
    dataset = { source: 'embedded Fashion-MNIST', train: head, heldOut: tail, classNames: FASHION_MNIST_CLASSES };
  } else {
    const loaded = await loadMatrix(args.data, { scale: args.scale, labelsPath: args.labels });
    // Fashion-MNIST and MNIST share the file layout; the path is the only hint for legend names.
    const classNames = /fashion/i.test(path.resolve(args.data)) ? FASHION_MNIST_CLASSES : undefined;
    const dir = JSON.stringify(args.data);
    const whole: Split = { x: loaded.x, labels: loaded.labels, origin: loaded.format === 'idx-directory' ? described(`the training images of ${dir}`) : fileRows(args.data) };
    if (loaded.test) {
      dataset = { source: args.data, train: whole, heldOut: { ...loaded.test, origin: described(`the test images of ${dir}`) }, classNames };
    } else {
      const hold = options.holdOut ? Math.min(HOLDOUT_ROWS, Math.floor(loaded.x.rows / 10)) : 0;
      if (hold > 0) {
        const { head, tail } = splitTail(whole, hold);
        dataset = { source: args.data, train: head, heldOut: tail, classNames };
      } else {
        dataset = { source: args.data, train: whole, classNames };
      }
    }
  }
  dataset.train = take(dataset.train, args.limit);
  if (dataset.heldOut) dataset.heldOut = take(dataset.heldOut, args.limit);
  return dataset;
}

/**
 * Rows to evaluate or reconstruct: all rows of a given file, the test split of a directory, or
 * the embedded held-out rows by default (the rows `vae train` never trained on).
 */
export async function loadEvalSplit(args: DataArgs): Promise<{ source: string; split: Split }> {
  const ds = await loadDataset(args, { holdOut: false });
  if (ds.heldOut) return { source: `${ds.source} (${args.data === undefined ? 'held-out rows' : 'test split'})`, split: ds.heldOut };
  return { source: ds.source, split: ds.train };
}

/** Fails clearly when the data does not fit the model, instead of a generic shape error. */
export function checkColumns(x: Matrix, inputDim: number, source: string): void {
  if (x.cols !== inputDim) {
    throw new Error(`the model expects ${inputDim} values per row but ${source} has ${x.cols} columns`);
  }
}
