/**
 * Bounded-memory .npy streaming: read row ranges of a file far larger than RAM with positioned
 * reads, and write a float32 matrix chunk by chunk when the final row count is not known upfront.
 */
import { promises as fsp } from 'fs';
import { invalidArgument } from '../errors';
import { Matrix, resolveScale, toMatrix } from './matrix';
import { formatError, ioError, OutputFile } from './io';
import { NpyDtype, NpyHeader, float32Bytes, npyDataBytes, npyFloat32Header, npyHeaderLength, npyMatrixShape, npyTypedArray, parseNpyHeader, toFloat32 } from './npy-format';

/** Default chunk budget: about 8 MiB of file data per chunk. */
const CHUNK_BYTES = 8 << 20;

/** A chunk of rows yielded by NpyRowReader: the Matrix plus the index of its first row in the file. */
export interface RowChunk extends Matrix {
  start: number;
}

async function readFully(fh: fsp.FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw formatError(file, `unexpected end of file at byte ${position + done}: expected ${buf.length - done} more bytes`);
    done += bytesRead;
  }
}

/**
 * Random access to the rows of a .npy file. Only the requested rows are held in memory, so a
 * 100 GB file can be trained on in chunks. Reads use explicit offsets and may run concurrently.
 * The caller owns the file handle: `close()` when done (iterating to the end does not close it).
 */
export class NpyRowReader implements AsyncIterable<RowChunk> {
  readonly rows: number;
  readonly cols: number;
  readonly dtype: NpyDtype;
  readonly shape: number[];
  private readonly scale: number;
  private closed = false;

  /** Use openNpyRows(). */
  constructor(readonly path: string, private readonly fh: fsp.FileHandle, readonly header: NpyHeader, scale: number | 'auto' | undefined) {
    ({ rows: this.rows, cols: this.cols } = npyMatrixShape(header, path));
    this.dtype = header.dtype;
    this.shape = header.shape;
    this.scale = resolveScale(scale, header.dtype === 'uint8');
  }

  /** Reads rows [start, start + count) as float32 (scaled like readNpyMatrix). */
  async readRows(start: number, count: number): Promise<Matrix> {
    if (this.closed) throw invalidArgument('reader', 'an open NpyRowReader', 'a closed reader');
    if (!Number.isInteger(start) || start < 0 || start > this.rows) throw invalidArgument('start', `an integer row index in [0, ${this.rows}]`, start);
    if (!Number.isInteger(count) || count < 0 || start + count > this.rows) throw invalidArgument('count', `an integer in [0, ${this.rows - start}] (rows left after start)`, count);
    const rowBytes = this.cols * this.header.itemSize;
    const bytes = new Uint8Array(count * rowBytes);
    try {
      await readFully(this.fh, bytes, this.header.dataOffset + start * rowBytes, this.path);
    } catch (err) {
      throw ioError('read', this.path, err);
    }
    return { data: toFloat32(npyTypedArray(bytes, this.header.dtype), this.scale), rows: count, cols: this.cols };
  }

  /** Yields consecutive chunks of at most `chunkRows` rows (default: about 8 MiB of file data each). */
  async *chunks(chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, this.cols * this.header.itemSize)))): AsyncGenerator<RowChunk> {
    if (!Number.isInteger(chunkRows) || chunkRows < 1) throw invalidArgument('chunkRows', 'a positive integer', chunkRows);
    for (let start = 0; start < this.rows; start += chunkRows) {
      const m = await this.readRows(start, Math.min(chunkRows, this.rows - start));
      yield { ...m, start };
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<RowChunk> {
    return this.chunks();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * Opens a .npy file for streaming row access. Validates the header and that the file is as long
 * as the header promises, so truncation is reported at open time rather than mid-training.
 */
export async function openNpyRows(file: string, options: { scale?: number | 'auto' } = {}): Promise<NpyRowReader> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    throw ioError('open', file, err);
  }
  try {
    const size = (await fh.stat()).size;
    const prefix = new Uint8Array(Math.min(size, 12));
    await readFully(fh, prefix, 0, file);
    const len = npyHeaderLength(prefix, file);
    if (len < 0) throw formatError(file, `truncated .npy header: the file has only ${size} bytes`);
    if (len > size) throw formatError(file, `truncated .npy header: expected ${len} bytes but the file has ${size}`);
    const head = new Uint8Array(len);
    await readFully(fh, head, 0, file);
    const header = parseNpyHeader(head, file);
    const need = header.dataOffset + npyDataBytes(header);
    if (size < need) {
      throw formatError(file, `truncated .npy data: shape (${header.shape.join(', ')}) of ${header.dtype} needs ${need} bytes (header ${header.dataOffset} + data ${need - header.dataOffset}) but the file has ${size}`);
    }
    return new NpyRowReader(file, fh, header, options.scale);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** Room reserved in the header for the final row count (up to 2^53 has 16 digits). */
const ROW_DIGITS = 16;

/**
 * Writes a float32 [rows, cols] .npy file chunk by chunk when the row count is unknown upfront.
 * The header is written with a zero row count padded with spaces, and rewritten in place with the
 * final count on close(); data goes to a temp file renamed into place on close() (OutputFile), so a
 * crash or abort() never leaves a half-written file at `path`. Pipes and devices are refused. Writes are serialised internally.
 */
export class NpyRowWriter {
  private position: number;
  private rowCount = 0;
  private queue: Promise<void> = Promise.resolve();
  private state: 'open' | 'closed' = 'open';
  private failure: Error | undefined;

  private constructor(readonly path: string, readonly cols: number, private readonly out: OutputFile, private readonly headerBytes: number) {
    this.position = headerBytes;
  }

  /** Creates the temp file and writes the placeholder header. */
  static async create(file: string, cols: number): Promise<NpyRowWriter> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a non-empty path string', file);
    if (!Number.isInteger(cols) || cols < 1) throw invalidArgument('cols', 'a positive integer', cols);
    const placeholder = npyFloat32Header([0, cols]);
    // Pad so any row count up to 2^53 fits without moving the data.
    const header = npyFloat32Header([0, cols], Math.ceil((placeholder.indexOf(0x0a) + 1 + ROW_DIGITS) / 64) * 64);
    const out = await OutputFile.open(file, { seekable: true });
    try {
      await out.handle.write(header, 0, header.length, 0);
    } catch (err) {
      await out.discard();
      throw ioError('create', file, err);
    }
    return new NpyRowWriter(file, cols, out, header.length);
  }

  /** Rows written so far. */
  get rows(): number {
    return this.rowCount;
  }

  /** Appends rows: a Matrix with `cols` columns or a flat Float32Array whose length is a multiple of `cols`. */
  write(chunk: Float32Array | Matrix): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.state !== 'open') return Promise.reject(invalidArgument('writer', 'an open NpyRowWriter', 'a closed writer'));
    const m = toMatrix(chunk, this.cols, 'chunk');
    const bytes = float32Bytes(m.data);
    const position = this.position;
    this.position += bytes.length;
    this.rowCount += m.rows;
    return this.enqueue(async () => {
      let done = 0;
      while (done < bytes.length) done += (await this.out.handle.write(bytes, done, bytes.length - done, position + done)).bytesWritten;
    });
  }

  /** Rewrites the header with the final row count, closes and renames into place. Returns the shape. */
  async close(): Promise<{ rows: number; cols: number }> {
    if (this.failure) throw this.failure;
    if (this.state !== 'open') throw invalidArgument('writer', 'an open NpyRowWriter', 'a closed writer');
    this.state = 'closed';
    await this.enqueue(async () => {
      const header = npyFloat32Header([this.rowCount, this.cols], this.headerBytes);
      await this.out.handle.write(header, 0, header.length, 0);
      await this.out.commit();
    });
    return { rows: this.rowCount, cols: this.cols };
  }

  /** Discards everything written; `path` is left untouched. */
  async abort(): Promise<void> {
    if (this.state === 'closed' && !this.failure) return;
    this.state = 'closed';
    await this.queue;
    await this.out.discard();
  }

  /** Runs `op` after all earlier writes; the first failure cleans up and fails every later call. */
  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.failure) throw this.failure;
      try {
        await op();
      } catch (err) {
        this.failure = ioError('write', this.path, err);
        await this.out.discard();
        throw this.failure;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
