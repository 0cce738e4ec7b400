/**
 * Numeric CSV: comma-separated numbers, one sample per line. Blank lines are ignored, cells may
 * be wrapped in double quotes, and an optional header row is detected when the first row is not
 * numeric. Quoted commas are not supported (this is a matrix format, not a spreadsheet format).
 * Reading streams line by line, so huge files are processed in bounded-memory chunks.
 */
import { createReadStream } from 'fs';
import { createInterface } from 'readline';
import { invalidArgument } from '../errors';
import { Matrix, toMatrix } from './matrix';
import { formatError, ioError, OutputFile } from './io';

export interface CsvReadOptions {
  /** true: the first non-blank line is a header; false: it is data; 'auto' (default): a header iff it is not numeric. */
  header?: boolean | 'auto';
  /** Rows per yielded chunk for csvRowChunks (default 4096). */
  chunkRows?: number;
}

/** A chunk of parsed rows; `header` is the header row if the file has one. */
export interface CsvChunk extends Matrix {
  start: number;
  header: string[] | null;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL: Record<string, number> = { nan: NaN, inf: Infinity, '+inf': Infinity, '-inf': -Infinity, infinity: Infinity, '+infinity': Infinity, '-infinity': -Infinity };

function unquote(cell: string): string {
  const t = cell.trim();
  return t.length >= 2 && t[0] === '"' && t[t.length - 1] === '"' ? t.slice(1, -1).trim() : t;
}

/** Parses one cell strictly (no hex, no empty-as-zero); returns undefined when not numeric. */
export function parseNumber(cell: string): number | undefined {
  const t = unquote(cell);
  if (NUMBER.test(t)) return Number(t);
  const s = SPECIAL[t.toLowerCase()];
  return s;
}

/**
 * Streams a numeric CSV file as chunks of at most `chunkRows` rows. Ragged rows and non-numeric
 * cells fail with ERR_FILE_FORMAT naming the file, 1-based line and column.
 */
export async function* csvRowChunks(file: string, options: CsvReadOptions = {}): AsyncGenerator<CsvChunk> {
  const headerOpt = options.header ?? 'auto';
  if (headerOpt !== 'auto' && typeof headerOpt !== 'boolean') throw invalidArgument('options.header', "true, false or 'auto'", headerOpt);
  const chunkRows = options.chunkRows ?? 4096;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw invalidArgument('options.chunkRows', 'a positive integer', chunkRows);

  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err) => reject(ioError('read', file, err)));
  });
  await opened;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let header: string[] | null = null;
  let cols = 0;
  let lineNo = 0;
  let start = 0;
  let buf = new Float32Array(0);
  let filled = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      const cells = line.split(',');
      if (cols === 0) {
        cols = cells.length;
        const values = cells.map(parseNumber);
        const isHeader = headerOpt === 'auto' ? values.some((v) => v === undefined) : headerOpt;
        if (isHeader) {
          header = cells.map(unquote);
          continue;
        }
      }
      if (cells.length !== cols) {
        throw formatError(file, `line ${lineNo} has ${cells.length} columns but expected ${cols} (like the ${header ? 'header' : 'first row'})`);
      }
      if (buf.length === 0) buf = new Float32Array(chunkRows * cols);
      for (let j = 0; j < cols; j++) {
        const v = parseNumber(cells[j]);
        if (v === undefined) throw formatError(file, `line ${lineNo}, column ${j + 1}: expected a number but found ${JSON.stringify(cells[j].trim().slice(0, 40))}`);
        buf[filled * cols + j] = v;
      }
      if (++filled === chunkRows) {
        yield { data: buf, rows: filled, cols, start, header };
        start += filled;
        filled = 0;
        buf = new Float32Array(chunkRows * cols);
      }
    }
  } catch (err) {
    throw ioError('read', file, err);
  } finally {
    lines.close();
    stream.destroy();
  }
  if (filled > 0) yield { data: buf.slice(0, filled * cols), rows: filled, cols, start, header };
}

/** Reads a whole numeric CSV file into a Matrix (plus its header row, if any). */
export async function readCsv(file: string, options: Omit<CsvReadOptions, 'chunkRows'> = {}): Promise<{ matrix: Matrix; header: string[] | null }> {
  const chunks: CsvChunk[] = [];
  let rows = 0;
  for await (const c of csvRowChunks(file, { ...options, chunkRows: 16384 })) {
    chunks.push(c);
    rows += c.rows;
  }
  if (rows === 0) throw formatError(file, 'the CSV file holds no data rows');
  const cols = chunks[0].cols;
  const data = new Float32Array(rows * cols);
  for (const c of chunks) data.set(c.data.subarray(0, c.rows * cols), c.start * cols);
  return { matrix: { data, rows, cols }, header: chunks[0].header };
}

/**
 * Shortest decimal that parses back to the same float32 (at most 9 significant digits, the
 * float32 round-trip bound). Tries 6 digits first, which covers typical data in one step.
 */
export function formatFloat32(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const f = Math.fround(v);
  let s = f.toPrecision(9);
  for (let p = 6; p < 9; p++) {
    const t = f.toPrecision(p);
    if (Math.fround(Number(t)) === f) { s = t; break; }
  }
  // Drop trailing zeros of the mantissa: 0.100000 -> 0.1, 1.50000e-7 -> 1.5e-7.
  return s.replace(/(\.\d*?)0+(?=$|e)/, '$1').replace(/\.(?=$|e)/, '');
}

/** Where CsvRowWriter's text goes: an OutputFile, or a stream such as process.stdout. */
interface TextSink {
  write(text: string): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

function fileSink(out: OutputFile): TextSink {
  return { write: (text) => out.handle.writeFile(text), commit: () => out.commit(), discard: () => out.discard() };
}

/** Waits for each chunk to be flushed (backpressure); the stream is left open for its owner. */
function streamSink(stream: NodeJS.WritableStream): TextSink {
  const write = (text: string) => new Promise<void>((resolve, reject) => void stream.write(text, (err) => (err ? reject(err) : resolve())));
  return { write, commit: async () => undefined, discard: async () => undefined };
}

/**
 * Writes a numeric CSV chunk by chunk to a temp file renamed into place on close() (OutputFile),
 * so readers never see a partial file, or to a stream (toStream). Values are written with
 * formatFloat32 (float32 round-trip exact).
 */
export class CsvRowWriter {
  private queue: Promise<void> = Promise.resolve();
  private count = 0;
  private closed = false;

  private constructor(readonly path: string, readonly cols: number, private readonly sink: TextSink) {}

  static async create(file: string, cols: number, options: { header?: string[] } = {}): Promise<CsvRowWriter> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a non-empty path string', file);
    const header = checkHeader(cols, options.header);
    const out = await OutputFile.open(file);
    const writer = new CsvRowWriter(file, cols, fileSink(out));
    if (header) await writer.writeHeader(header);
    return writer;
  }

  /**
   * Writes to `stream` (for example process.stdout), named `name` in errors. close() does not
   * end the stream, and abort() cannot take back what was written.
   */
  static async toStream(stream: NodeJS.WritableStream, cols: number, options: { header?: string[]; name?: string } = {}): Promise<CsvRowWriter> {
    if (typeof stream?.write !== 'function') throw invalidArgument('stream', 'a writable stream', stream);
    const header = checkHeader(cols, options.header);
    const writer = new CsvRowWriter(options.name ?? 'the output stream', cols, streamSink(stream));
    if (header) await writer.writeHeader(header);
    return writer;
  }

  get rows(): number {
    return this.count;
  }

  /** Appends rows (a Matrix with `cols` columns or a flat Float32Array). Writes are serialised. */
  write(chunk: Float32Array | Matrix): Promise<void> {
    if (this.closed) return Promise.reject(invalidArgument('writer', 'an open CsvRowWriter', 'a closed writer'));
    const m = toMatrix(chunk, this.cols, 'chunk');
    const lines: string[] = new Array(m.rows);
    const cells: string[] = new Array(m.cols);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < m.cols; j++) cells[j] = formatFloat32(m.data[i * m.cols + j]);
      lines[i] = cells.join(',');
    }
    this.count += m.rows;
    const text = lines.join('\n') + '\n';
    return this.enqueue(() => this.sink.write(text));
  }

  async close(): Promise<{ rows: number; cols: number }> {
    if (this.closed) throw invalidArgument('writer', 'an open CsvRowWriter', 'a closed writer');
    this.closed = true;
    await this.enqueue(() => this.sink.commit());
    return { rows: this.count, cols: this.cols };
  }

  /** Discards the output; `path` is left untouched. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.sink.discard();
  }

  private async writeHeader(header: string[]): Promise<void> {
    try {
      await this.enqueue(() => this.sink.write(header.join(',') + '\n'));
    } catch (err) {
      await this.sink.discard();
      throw err;
    }
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.queue.then(op).catch((err) => {
      throw ioError('write', this.path, err);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function checkHeader(cols: number, header: string[] | undefined): string[] | undefined {
  if (!Number.isInteger(cols) || cols < 1) throw invalidArgument('cols', 'a positive integer', cols);
  if (header !== undefined && (!Array.isArray(header) || header.length !== cols || header.some((h) => typeof h !== 'string' || /[,\r\n]/.test(h)))) {
    throw invalidArgument('options.header', `an Array of ${cols} strings without commas or newlines`, header);
  }
  return header;
}

/** Writes a whole Matrix as CSV (optionally with a header row), atomically. */
export async function writeCsv(file: string, m: Matrix, options: { header?: string[] } = {}): Promise<void> {
  const x = toMatrix(m, undefined, 'matrix');
  const w = await CsvRowWriter.create(file, x.cols, options);
  try {
    for (let i = 0; i < x.rows; i += 4096) await w.write({ data: x.data.subarray(i * x.cols, Math.min(x.rows, i + 4096) * x.cols), rows: Math.min(4096, x.rows - i), cols: x.cols });
    await w.close();
  } catch (err) {
    await w.abort();
    throw err;
  }
}
