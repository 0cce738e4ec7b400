/**
 * IDX files (the MNIST / Fashion-MNIST container): magic `00 00 <dtype> <ndims>`, then ndims
 * big-endian uint32 sizes, then the big-endian payload. Files may be gzip-compressed; gzip is
 * detected from the content (1f 8b), not the extension, because downloads are often renamed.
 */
import { gunzip, gzip } from 'zlib';
import { promisify } from 'util';
import { invalidArgument } from '../errors';
import { Matrix, ScaleOptions, resolveScale } from './matrix';
import { formatError, readFileChecked, writeFileAtomic } from './io';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded IDX tensor: `data` is row-major in native byte order, `data.length === product(dims)`. */
export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}

const CODES: Record<number, IdxDtype> = { 0x08: 'uint8', 0x09: 'int8', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64' };
const CODE_OF: Record<IdxDtype, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };
const SIZE: Record<IdxDtype, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

/** True when `bytes` starts with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** True when `bytes` starts like an uncompressed IDX file (00 00, a known dtype, 1..255 dims). */
export function looksLikeIdx(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] in CODES && bytes[3] > 0;
}

/** Decompresses when gzip, naming the file if the stream is corrupt or truncated. */
export async function maybeGunzip(bytes: Buffer, file: string): Promise<Buffer> {
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzipAsync(bytes);
  } catch (err) {
    throw formatError(file, `corrupt or truncated gzip data (${(err as Error).message})`, err);
  }
}

/** Decodes an uncompressed IDX buffer. `file` is only used in error messages. */
export function parseIdx(buf: Uint8Array, file = '<buffer>'): IdxArray {
  if (buf.length < 4) throw formatError(file, `not an IDX file: ${buf.length} bytes is shorter than the 4-byte magic`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const hex = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw formatError(file, `bad IDX magic: expected 00 00 <dtype> <ndims> but found ${hex}`);
  }
  const dtype = CODES[buf[2]];
  if (!dtype) throw formatError(file, `unknown IDX dtype 0x${buf[2].toString(16).padStart(2, '0')} (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)`);
  const ndims = buf[3];
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) throw formatError(file, `truncated IDX header: expected ${headerBytes} bytes for ${ndims} dims but the file has ${buf.length}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * SIZE[dtype];
  if (buf.length !== expected) {
    const what = buf.length < expected ? 'truncated IDX data' : 'trailing bytes after IDX data';
    throw formatError(file, `${what}: dims [${dims.join(', ')}] of ${dtype} need ${expected} bytes (header ${headerBytes} + data ${expected - headerBytes}) but the file has ${buf.length}`);
  }
  return { dtype, dims, data: decode(view, headerBytes, dtype, count) };
}

function decode(view: DataView, off: number, dtype: IdxDtype, n: number): IdxData {
  switch (dtype) {
    case 'uint8': return new Uint8Array(view.buffer.slice(view.byteOffset + off, view.byteOffset + off + n));
    case 'int8': return new Int8Array(view.buffer.slice(view.byteOffset + off, view.byteOffset + off + n));
    case 'int16': { const a = new Int16Array(n); for (let i = 0; i < n; i++) a[i] = view.getInt16(off + 2 * i, false); return a; }
    case 'int32': { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = view.getInt32(off + 4 * i, false); return a; }
    case 'float32': { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = view.getFloat32(off + 4 * i, false); return a; }
    case 'float64': { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = view.getFloat64(off + 8 * i, false); return a; }
  }
}

/** Reads an IDX file, plain or gzip-compressed. */
export async function readIdx(file: string): Promise<IdxArray> {
  return parseIdx(await maybeGunzip(await readFileChecked(file), file), file);
}

/**
 * Reads IDX images as a float32 Matrix: rows = dims[0], cols = product of the other dims
 * (28 x 28 images become 784 columns). uint8 pixels are scaled to [0, 1] unless `scale` says otherwise.
 */
export async function readIdxImages(file: string, options: ScaleOptions = {}): Promise<Matrix> {
  return idxToMatrix(await readIdx(file), file, options.scale);
}

/** Converts a decoded IDX tensor to a float32 Matrix (see readIdxImages). */
export function idxToMatrix(idx: IdxArray, file: string, scale?: number | 'auto'): Matrix {
  const k = resolveScale(scale, idx.dtype === 'uint8');
  const rows = idx.dims[0];
  const cols = idx.dims.slice(1).reduce((a, b) => a * b, 1);
  if (rows === 0 || cols === 0) throw formatError(file, `IDX dims [${idx.dims.join(', ')}] hold no data`);
  const data = new Float32Array(idx.data.length);
  for (let i = 0; i < data.length; i++) data[i] = idx.data[i] * k;
  return { data, rows, cols };
}

/** Reads a 1-D integer IDX label file: uint8 labels stay a Uint8Array, wider integers become an Int32Array. */
export async function readIdxLabels(file: string): Promise<Uint8Array | Int32Array> {
  const idx = await readIdx(file);
  if (idx.dims.length !== 1) throw formatError(file, `expected a 1-D label file but found dims [${idx.dims.join(', ')}]`);
  if (idx.data instanceof Uint8Array) return idx.data;
  if (idx.dtype === 'float32' || idx.dtype === 'float64') throw formatError(file, `expected integer labels but the IDX dtype is ${idx.dtype}`);
  return Int32Array.from(idx.data);
}

/** Encodes an IDX tensor (big-endian), e.g. to write test fixtures or export data for other tools. */
export function encodeIdx(arr: IdxArray): Buffer {
  const { dtype, dims, data } = arr;
  if (!(dtype in CODE_OF)) throw invalidArgument('dtype', 'one of ' + Object.keys(CODE_OF).join(', '), dtype);
  if (!Array.isArray(dims) || dims.length === 0 || dims.length > 255 || dims.some((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff)) {
    throw invalidArgument('dims', 'an Array of 1..255 non-negative uint32 sizes', dims);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (!ArrayBuffer.isView(data) || data.length !== count) throw invalidArgument('data', `a typed array of length ${count} (product of dims)`, data);
  const header = 4 + 4 * dims.length;
  const buf = Buffer.alloc(header + count * SIZE[dtype]);
  buf[2] = CODE_OF[dtype];
  buf[3] = dims.length;
  dims.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const x = data[i];
    switch (dtype) {
      case 'uint8': v.setUint8(header + i, x); break;
      case 'int8': v.setInt8(header + i, x); break;
      case 'int16': v.setInt16(header + 2 * i, x, false); break;
      case 'int32': v.setInt32(header + 4 * i, x, false); break;
      case 'float32': v.setFloat32(header + 4 * i, x, false); break;
      case 'float64': v.setFloat64(header + 8 * i, x, false); break;
    }
  }
  return buf;
}

/** Writes an IDX file atomically; `gzip: true` compresses it like the MNIST distribution files. */
export async function writeIdx(file: string, arr: IdxArray, options: { gzip?: boolean } = {}): Promise<void> {
  const raw = encodeIdx(arr);
  await writeFileAtomic(file, options.gzip ? await gzipAsync(raw) : raw);
}
