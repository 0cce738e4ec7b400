/**
 * One entry point for training data: loadMatrix() sniffs the content (npy magic, gzip, IDX magic)
 * before trusting the extension, so renamed downloads still load, and accepts an MNIST-style
 * directory. Also locates the Fashion-MNIST test split embedded in the package.
 */
import { existsSync, readFileSync, promises as fsp } from 'fs';
import * as path from 'path';
import { VaeError, invalidArgument } from '../errors';
import { Matrix } from './matrix';
import { formatError, ioError } from './io';
import { isGzip, looksLikeIdx, readIdxImages, readIdxLabels } from './idx';
import { isNpy, readNpy, readNpyMatrix } from './npy';
import { readCsv } from './csv';

export type Labels = Uint8Array | Int32Array;

/** One split of a data set. */
export interface DataSplit {
  x: Matrix;
  labels?: Labels;
}

/** What loadMatrix returns: the data, labels when known, and a test split for MNIST directories. */
export interface LoadedData extends DataSplit {
  format: 'npy' | 'csv' | 'idx' | 'idx-directory';
  test?: DataSplit;
}

export interface LoadOptions {
  /** Multiplier for the values, or 'auto' (default): uint8 data (and integer CSVs in 0..255) are divided by 255. */
  scale?: number | 'auto';
  /** A labels file (IDX, .npy or one-column CSV) with one integer per row of the data. */
  labelsPath?: string;
}

/** Class names of Fashion-MNIST, indexed by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

async function sniff(file: string): Promise<Buffer> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'r');
    const buf = Buffer.alloc(16);
    const { bytesRead } = await fh.read(buf, 0, 16, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    throw ioError('read', file, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Loads a data matrix from a .npy, .csv or IDX (optionally gzip) file, or an MNIST-style directory
 * (see loadIdxDirectory). Labels come from the directory or from `labelsPath`.
 */
export async function loadMatrix(file: string, options: LoadOptions = {}): Promise<LoadedData> {
  if (typeof file !== 'string' || file === '') throw invalidArgument('path', 'a path to a .npy, .csv or IDX file or an MNIST directory', file);
  let stat;
  try {
    stat = await fsp.stat(file);
  } catch (err) {
    throw ioError('read', file, err);
  }
  let result: LoadedData;
  if (stat.isDirectory()) {
    const dir = await loadIdxDirectory(file, options);
    result = { ...dir.train, format: 'idx-directory', test: dir.test };
  } else {
    const format = await dataFileFormat(file);
    if (format === 'npy') result = { x: await readNpyMatrix(file, options), format };
    else if (format === 'idx') result = { x: await readIdxImages(file, options), format };
    else result = { x: await readCsvScaled(file, options.scale), format };
  }
  if (options.labelsPath !== undefined) result.labels = await loadLabels(options.labelsPath, result.x.rows);
  return result;
}

/**
 * The format of a data file, judged by its content (npy magic, gzip, IDX magic) before its
 * extension, so renamed downloads still load: CSV when it is named .csv/.txt or starts as text.
 * Anything else is ERR_FILE_FORMAT rather than a confusing CSV parse error.
 */
export async function dataFileFormat(file: string): Promise<'npy' | 'idx' | 'csv'> {
  const head = await sniff(file);
  const ext = path.extname(file).toLowerCase();
  if (isNpy(head)) return 'npy';
  if (isGzip(head) || looksLikeIdx(head)) return 'idx';
  if (ext === '.csv' || ext === '.txt' || isText(head)) return 'csv';
  throw formatError(file, 'unrecognised data file: expected .npy, .csv or IDX (optionally gzip-compressed) content');
}

function isText(head: Buffer): boolean {
  return head.length > 0 && head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b === 0xef || b === 0xbb || b === 0xbf);
}

async function readCsvScaled(file: string, scale: number | 'auto' | undefined): Promise<Matrix> {
  const { matrix } = await readCsv(file);
  let k = 1;
  if (scale === undefined || scale === 'auto') {
    // CSV has no dtype: treat all-integer data in 0..255 with some value above 1 as 8-bit pixels.
    let max = 0;
    let bytes = true;
    for (const v of matrix.data) {
      if (!(Number.isInteger(v) && v >= 0 && v <= 255)) { bytes = false; break; }
      if (v > max) max = v;
    }
    if (bytes && max > 1) k = 1 / 255;
  } else if (typeof scale === 'number' && Number.isFinite(scale)) k = scale;
  else throw invalidArgument('options.scale', "a finite number or 'auto'", scale);
  if (k !== 1) for (let i = 0; i < matrix.data.length; i++) matrix.data[i] *= k;
  return matrix;
}

/** Loads integer labels from an IDX, .npy or CSV file and checks there is one per data row. */
export async function loadLabels(file: string, rows?: number): Promise<Labels> {
  const head = await sniff(file);
  let labels: Labels;
  if (isNpy(head)) {
    const arr = await readNpy(file);
    if (arr.shape.length !== 1 && !(arr.shape.length === 2 && arr.shape[1] === 1)) throw formatError(file, `expected a 1-D label array but found shape (${arr.shape.join(', ')})`);
    labels = arr.data instanceof Uint8Array ? arr.data : Int32Array.from(arr.data as ArrayLike<number | bigint>, Number);
    if (arr.dtype.startsWith('float') && labels.some((v, i) => v !== Number(arr.data[i]))) throw formatError(file, 'expected integer labels but found fractional values');
  } else if (isGzip(head) || looksLikeIdx(head)) {
    labels = await readIdxLabels(file);
  } else {
    const { matrix } = await readCsv(file);
    if (matrix.cols !== 1) throw formatError(file, `expected one label per line but found ${matrix.cols} columns`);
    if (matrix.data.some((v) => !Number.isInteger(v))) throw formatError(file, 'expected integer labels but found fractional values');
    labels = Int32Array.from(matrix.data);
  }
  if (rows !== undefined && labels.length !== rows) throw formatError(file, `expected ${rows} labels (one per data row) but found ${labels.length}`);
  return labels;
}

const IDX_NAME = /^(train|t10k|test)-(images|labels)[-.]idx[13]-ubyte(\.gz)?$/;

/**
 * Loads an MNIST / Fashion-MNIST directory: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`
 * (a '.' before "idx" is accepted too). A directory holding only the t10k split, like the
 * embedded one, yields it as `train` with no `test`.
 */
export async function loadIdxDirectory(dir: string, options: { scale?: number | 'auto' } = {}): Promise<{ train: DataSplit; test?: DataSplit }> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    throw ioError('list', dir, err);
  }
  const found: Record<string, string> = {};
  for (const n of names.sort()) {
    const m = IDX_NAME.exec(n);
    if (m) found[`${m[1] === 'test' ? 't10k' : m[1]}-${m[2]}`] ??= path.join(dir, n);
  }
  const split = async (name: 'train' | 't10k'): Promise<DataSplit | undefined> => {
    const images = found[`${name}-images`];
    if (!images) return undefined;
    const x = await readIdxImages(images, options);
    const labelFile = found[`${name}-labels`];
    if (!labelFile) return { x };
    const labels = await readIdxLabels(labelFile);
    if (labels.length !== x.rows) throw formatError(labelFile, `expected ${x.rows} labels (one per image in ${path.basename(images)}) but found ${labels.length}`);
    return { x, labels };
  };
  const [train, test] = await Promise.all([split('train'), split('t10k')]);
  if (train) return { train, test };
  if (test) return { train: test };
  throw new VaeError('ERR_IO', `No MNIST-style files in ${JSON.stringify(dir)}: expected train-images-idx3-ubyte[.gz] and/or t10k-images-idx3-ubyte[.gz] (found: ${names.slice(0, 10).join(', ') || 'nothing'})`);
}

let embeddedDir: string | undefined;

/**
 * The package's data/fashion-mnist directory. Walks up from this file to the package.json named
 * "vae-node", so it works from lib/ (ts-jest), dist/ (compiled) and when installed in node_modules.
 */
export function embeddedDataPath(): string {
  if (embeddedDir) return embeddedDir;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'vae-node') {
          return (embeddedDir = path.join(dir, 'data', 'fashion-mnist'));
        }
      } catch {
        // An unreadable package.json belongs to something else; keep walking up.
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new VaeError('ERR_IO', `Cannot find the vae-node package root (a package.json named "vae-node") above ${JSON.stringify(__dirname)}`);
}

/** The embedded Fashion-MNIST test split: 10000 images of 28 x 28 scaled to [0, 1], labels 0..9 (see FASHION_MNIST_CLASSES). */
export async function loadEmbeddedFashionMnist(): Promise<{ x: Matrix; labels: Uint8Array }> {
  const dir = embeddedDataPath();
  const images = path.join(dir, 't10k-images-idx3-ubyte.gz');
  const labelFile = path.join(dir, 't10k-labels-idx1-ubyte.gz');
  const [x, labels] = await Promise.all([readIdxImages(images), readIdxLabels(labelFile)]);
  if (!(labels instanceof Uint8Array) || labels.length !== x.rows) {
    throw formatError(labelFile, `expected ${x.rows} uint8 labels but found ${labels.length}`);
  }
  return { x, labels };
}
