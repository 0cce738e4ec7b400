/**
 * `vae encode`: posterior means (and optionally log-variances) of a file of any size. Rows are
 * streamed in --batch-size chunks, so memory stays bounded by a few chunks whatever the file size:
 * the next chunk is read while the current one is encoded, and its output written meanwhile.
 *
 * Output layout: one row per input row; columns mean_0..mean_{d-1}, and with --logvar
 * additionally logvar_0..logvar_{d-1} (2d columns: [mean..., logvar...]). CSV output has that header.
 */
import * as path from 'path';
import { Command } from 'commander';
import { CsvRowWriter, Matrix, NpyRowWriter, csvRowChunks, dataFileFormat, loadMatrix, openNpyRows, sliceRows } from '../data';
import { VaeError } from '../errors';
import { VAE } from '../model/vae';
import { UsageError } from './errors';
import { fileRows, inFile } from './rows';
import { addThreadsOption, loadModel } from './model';
import { integer, scale } from './parse';
import { duration, grouped } from './progress';

export const DEFAULT_ENCODE_BATCH = 4096;

interface EncodeArgs {
  in: string;
  out: string;
  logvar?: boolean;
  batchSize: number;
  scale: number | 'auto';
  threads?: number;
}

/** A stream of input chunks plus the cleanup of whatever it holds open. */
interface ChunkSource {
  chunks: AsyncIterator<Matrix>;
  close(): Promise<void>;
}

interface RowWriter {
  readonly rows: number;
  write(m: Matrix): Promise<void>;
  close(): Promise<unknown>;
  abort(): Promise<void>;
}

export function registerEncode(program: Command): void {
  const cmd = program
    .command('encode')
    .argument('<model>', 'model file written by vae train')
    .description('write the posterior means of every input row (streams files of any size)')
    .requiredOption('--in <file>', 'input rows: .npy or .csv (streamed), or IDX (loaded whole)')
    .requiredOption('--out <file>', 'output file, .npy or .csv by extension; - writes CSV to stdout')
    .option('--logvar', 'also write log-variances: columns [mean_0..mean_{d-1}, logvar_0..logvar_{d-1}]')
    .option('--batch-size <rows>', 'rows per chunk (memory use is a few chunks)', integer(1, 1 << 24), DEFAULT_ENCODE_BATCH)
    .option('--scale <number|auto>', 'multiplier for the input; auto divides uint8 .npy/IDX by 255, and CSVs of 0..255 integers (judged on the first chunk)', scale, 'auto');
  addThreadsOption(cmd).action(async (modelFile: string, args: EncodeArgs) => {
    const kind = args.out === STDOUT ? '.csv' : path.extname(args.out).toLowerCase();
    if (kind !== '.npy' && kind !== '.csv') throw new UsageError(`--out must end in .npy or .csv, or be - for CSV on stdout (received ${JSON.stringify(args.out)})`);
    const vae = await loadModel(modelFile, args.threads);
    const started = process.hrtime.bigint();
    const { rows, cols, readerLeft } = await encodeFile(vae, args, kind);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // The report goes to stderr when stdout carries the data.
    const report = args.out === STDOUT ? process.stderr : process.stdout;
    const where = args.out === STDOUT ? (readerLeft ? 'stdout, until its reader closed it' : 'stdout') : args.out;
    report.write(`encoded ${grouped(rows)} rows -> ${where} (${cols} columns${args.logvar ? ': means then log-variances' : ''}) in ${seconds < 60 ? `${seconds.toFixed(2)} s` : duration(seconds)}: ${grouped(rows / Math.max(seconds, 1e-9))} rows/s\n`);
  });
}

/** `--out -`: CSV on stdout. */
const STDOUT = '-';

/** True for the write error of an output whose reader went away (`vae encode ... --out - | head`). */
function readerClosed(err: unknown): boolean {
  return err instanceof VaeError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

/**
 * Encodes args.in into args.out. When stdout's reader goes away, encoding stops there, like any
 * producer in a pipeline (readerLeft), instead of encoding the rest of the file for nobody.
 */
async function encodeFile(vae: VAE, args: EncodeArgs, kind: '.npy' | '.csv'): Promise<{ rows: number; cols: number; readerLeft: boolean }> {
  const d = vae.config.latentDim;
  const cols = args.logvar ? 2 * d : d;
  const source = await openSource(args.in, args.batchSize, args.scale);
  let writer: RowWriter | undefined;
  const ignore = () => undefined;
  try {
    const header = [...Array.from({ length: d }, (_, i) => `mean_${i}`), ...(args.logvar ? Array.from({ length: d }, (_, i) => `logvar_${i}`) : [])];
    if (args.out === STDOUT) writer = await CsvRowWriter.toStream(process.stdout, cols, { header, name: 'stdout' });
    else if (kind === '.npy') writer = await NpyRowWriter.create(args.out, cols);
    else writer = await CsvRowWriter.create(args.out, cols, { header });
    // Pipeline: read chunk k+1 and write chunk k-1 while chunk k is encoded. Promises that are
    // awaited later get a no-op catch so a failure is reported where awaited, not as unhandled.
    let next = source.chunks.next();
    next.catch(ignore);
    let writing: Promise<void> = Promise.resolve();
    let firstRow = 0; // of the chunk, in the file
    for (;;) {
      const r = await next;
      if (r.done) break;
      next = source.chunks.next();
      next.catch(ignore);
      const chunk = r.value;
      if (chunk.cols !== vae.config.inputDim) {
        throw new Error(`the model expects ${vae.config.inputDim} values per row but ${JSON.stringify(args.in)} has ${chunk.cols} columns`);
      }
      const encoded = args.logvar ? vae.encodeAsync(chunk).then((e) => sideBySide(e, chunk.rows, d)) : vae.encodeMeanAsync(chunk);
      const out = await encoded.catch((err) => {
        throw inFile(err, 'x', fileRows(args.in, firstRow));
      });
      firstRow += chunk.rows;
      await writing;
      writing = writer.write({ data: out, rows: chunk.rows, cols });
      writing.catch(ignore);
    }
    await writing;
    const rows = writer.rows;
    if (rows === 0) throw new Error(`${JSON.stringify(args.in)} holds no data rows`);
    await writer.close();
    return { rows, cols, readerLeft: false };
  } catch (err) {
    await writer?.abort().catch(ignore);
    if (writer && args.out === STDOUT && readerClosed(err)) return { rows: writer.rows, cols, readerLeft: true };
    throw err;
  } finally {
    await source.close().catch(ignore);
  }
}

/** Rows of [mean..., logVar...]. */
function sideBySide(e: { mean: Float32Array; logVar: Float32Array }, rows: number, d: number): Float32Array {
  const out = new Float32Array(rows * 2 * d);
  for (let i = 0; i < rows; i++) {
    out.set(e.mean.subarray(i * d, (i + 1) * d), 2 * i * d);
    out.set(e.logVar.subarray(i * d, (i + 1) * d), (2 * i + 1) * d);
  }
  return out;
}

/** Picks the reader by content (like loadMatrix), streaming .npy and CSV. */
async function openSource(file: string, chunkRows: number, scaleArg: number | 'auto'): Promise<ChunkSource> {
  const format = await dataFileFormat(file);
  if (format === 'npy') {
    const reader = await openNpyRows(file, { scale: scaleArg });
    return { chunks: reader.chunks(chunkRows), close: () => reader.close() };
  }
  if (format === 'idx') {
    // IDX files are small (and gzip is not seekable), so they are loaded whole and sliced.
    const { x } = await loadMatrix(file, { scale: scaleArg });
    async function* slices(): AsyncGenerator<Matrix> {
      for (let s = 0; s < x.rows; s += chunkRows) yield sliceRows(x, s, s + chunkRows);
    }
    return { chunks: slices(), close: async () => undefined };
  }
  const gen = scaledCsv(file, chunkRows, scaleArg);
  return { chunks: gen, close: async () => void (await gen.return(undefined)) };
}

/** 0: not 8-bit data; 1: integers in 0..1 (undecidable); 2: integers in 0..255 with some > 1. */
function byteEvidence(data: Float32Array): 0 | 1 | 2 {
  let max = 0;
  for (const v of data) {
    if (!(Number.isInteger(v) && v >= 0 && v <= 255)) return 0;
    if (v > max) max = v;
  }
  return max > 1 ? 2 : 1;
}

/**
 * CSV chunks scaled like loadMatrix: 'auto' divides 0..255 integer data by 255. Streaming cannot
 * see the whole file first, so the first chunk decides and a later contradiction is an error.
 */
async function* scaledCsv(file: string, chunkRows: number, scaleArg: number | 'auto'): AsyncGenerator<Matrix> {
  let k = typeof scaleArg === 'number' ? scaleArg : undefined;
  let first: 0 | 1 | 2 | undefined;
  for await (const c of csvRowChunks(file, { chunkRows })) {
    const m: Matrix = { data: c.data.subarray(0, c.rows * c.cols), rows: c.rows, cols: c.cols };
    if (scaleArg === 'auto') {
      const ev = byteEvidence(m.data);
      if (first === undefined) {
        first = ev;
        k = ev === 2 ? 1 / 255 : 1;
      } else if ((first === 2 && ev === 0) || (first === 1 && ev === 2)) {
        throw new Error(`--scale auto judged ${JSON.stringify(file)} from its first ${chunkRows} rows, but rows from ${c.start + 1} on disagree; pass --scale explicitly (1 keeps the values, 0.00392156863 = 1/255 maps 0..255 to [0, 1])`);
      }
    }
    if (k !== undefined && k !== 1) for (let i = 0; i < m.data.length; i++) m.data[i] *= k;
    yield m;
  }
}
