/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian, C order.
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for v1, uint32 LE for v2/v3),
 * a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }`
 * padded with spaces to a multiple of 64 bytes and ended by '\n', then the raw array.
 *
 * This module holds the header and byte codecs shared by the whole-file reader/writer
 * (npy.ts) and the bounded-memory streaming ones (npy-stream.ts).
 */
import { endianness } from 'os';
import { alignedCopy, formatError } from './io';

export type NpyDtype = 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';
export type NpyData =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** The parsed header of a .npy file. `dataOffset` is where the array bytes start. */
export interface NpyHeader {
  version: number;
  descr: string;
  dtype: NpyDtype;
  itemSize: number;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

/** A whole decoded .npy array (row-major, native byte order). */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const KINDS: Record<string, NpyDtype> = {
  f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool',
};

/** Bytes per element of each dtype. */
export const NPY_ITEM_SIZE: Record<NpyDtype, number> = {
  float32: 4, float64: 8, int8: 1, int16: 2, int32: 4, int64: 8, uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1,
};

/** True when `bytes` starts with the .npy magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && NPY_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * How many bytes must be read to parse the header: 10 or 12 for the fixed prefix, then
 * the full length once the prefix is known. Returns -1 if `prefix` is too short to tell.
 */
export function npyHeaderLength(prefix: Uint8Array, file: string): number {
  if (prefix.length < 10) return -1;
  if (!isNpy(prefix)) throw formatError(file, 'bad .npy magic: expected the file to start with "\\x93NUMPY"');
  const major = prefix[6];
  if (major === 1) return 10 + (prefix[8] | (prefix[9] << 8));
  if (major !== 2 && major !== 3) throw formatError(file, `unsupported .npy format version ${major}.${prefix[7]} (expected 1.0, 2.0 or 3.0)`);
  if (prefix.length < 12) return -1;
  return 12 + Buffer.from(prefix.buffer, prefix.byteOffset, 12).readUInt32LE(8);
}

/** Parses the header from a buffer that holds at least `npyHeaderLength` bytes. */
export function parseNpyHeader(buf: Uint8Array, file = '<buffer>'): NpyHeader {
  const total = npyHeaderLength(buf, file);
  if (total < 0 || buf.length < total) {
    throw formatError(file, `truncated .npy header: expected ${total < 0 ? 'at least 12' : total} bytes but the file has ${buf.length}`);
  }
  const major = buf[6];
  const start = major === 1 ? 10 : 12;
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, total - start).toString(major === 3 ? 'utf8' : 'latin1');
  const bad = (why: string) => formatError(file, `bad .npy header (${why}): ${JSON.stringify(text.trim().slice(0, 120))}`);
  if (!/^\s*\{[\s\S]*\}\s*$/.test(text)) throw bad('not a dict literal');
  const descrM = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (!descrM) {
    if (/['"]descr['"]\s*:\s*\[/.test(text)) throw formatError(file, 'unsupported .npy dtype: structured (record) arrays are not supported; save a plain numeric array');
    throw bad("missing 'descr'");
  }
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortranM) throw bad("missing 'fortran_order'");
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeM) throw bad("missing 'shape'");
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const m = /^(\d+)L?$/.exec(s); // Python 2 wrote longs as 3L
    if (!m) throw bad(`shape entry ${JSON.stringify(s)} is not a non-negative integer`);
    return Number(m[1]);
  });
  const descr = descrM[2];
  const order = descr[0];
  const dtype = KINDS[descr.slice(1)];
  if (!'<>|='.includes(order) || !dtype) {
    throw formatError(file, `unsupported .npy dtype ${JSON.stringify(descr)} (expected float32 '<f4', float64 '<f8', uint8 '|u1', int32 '<i4', int64 '<i8' or another plain integer type)`);
  }
  const itemSize = Number(descr.slice(2));
  if (order === '>' && itemSize > 1) {
    throw formatError(file, `unsupported .npy dtype ${JSON.stringify(descr)}: big-endian data; convert with arr.astype('<${descr.slice(1)}')`);
  }
  const fortranOrder = fortranM[1] === 'True';
  if (fortranOrder && shape.filter((d) => d > 1).length > 1) {
    throw formatError(file, 'Fortran-order (column-major) .npy arrays are not supported; save with np.ascontiguousarray(arr)');
  }
  return { version: major, descr, dtype, itemSize, fortranOrder, shape, dataOffset: total };
}

/** Number of data bytes the header promises. */
export function npyDataBytes(h: NpyHeader): number {
  return h.shape.reduce((a, b) => a * b, 1) * h.itemSize;
}

/** Matrix shape for a header: rows = shape[0], cols = product of the trailing dims (1-D -> one column). */
export function npyMatrixShape(h: NpyHeader, file: string): { rows: number; cols: number } {
  if (h.shape.length === 0) throw formatError(file, 'expected a 1-D or 2-D array but the .npy file holds a 0-D scalar');
  return { rows: h.shape[0], cols: h.shape.slice(1).reduce((a, b) => a * b, 1) };
}

/** Reverses the bytes of each item in place - only needed on big-endian hosts. */
function swapBytes(bytes: Uint8Array, itemSize: number): void {
  if (itemSize === 1 || endianness() === 'LE') return;
  for (let i = 0; i < bytes.length; i += itemSize) bytes.subarray(i, i + itemSize).reverse();
}

/** Views little-endian bytes (copied, so the result owns aligned memory) as the typed array of `dtype`. */
export function npyTypedArray(bytes: Uint8Array, dtype: NpyDtype): NpyData {
  const itemSize = NPY_ITEM_SIZE[dtype];
  const ab = alignedCopy(bytes);
  swapBytes(new Uint8Array(ab), itemSize);
  switch (dtype) {
    case 'float32': return new Float32Array(ab);
    case 'float64': return new Float64Array(ab);
    case 'int8': return new Int8Array(ab);
    case 'int16': return new Int16Array(ab);
    case 'int32': return new Int32Array(ab);
    case 'int64': return new BigInt64Array(ab);
    case 'uint8': case 'bool': return new Uint8Array(ab);
    case 'uint16': return new Uint16Array(ab);
    case 'uint32': return new Uint32Array(ab);
    case 'uint64': return new BigUint64Array(ab);
  }
}

/** Converts any NpyData to float32, multiplying by `k`. */
export function toFloat32(data: NpyData, k: number): Float32Array {
  if (data instanceof Float32Array && k === 1) return data;
  const out = new Float32Array(data.length);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(data[i]) * k;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = data[i] * k;
  }
  return out;
}

/**
 * Builds a v1/v2 header for a float32 C-order array of `shape`, padded to `minTotal` bytes
 * (a multiple of 64). The streaming writer uses `minTotal` to rewrite the row count in place.
 */
export function npyFloat32Header(shape: number[], minTotal = 0): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  let version = 1;
  let prefix = 10;
  if (dict.length + 1 + prefix > 0xffff) { version = 2; prefix = 12; }
  const total = Math.max(minTotal, Math.ceil((prefix + dict.length + 1) / 64) * 64);
  if (prefix + dict.length + 1 > total) throw new RangeError(`npy header for shape (${dims}) does not fit ${total} bytes`);
  const out = Buffer.alloc(total, 0x20);
  NPY_MAGIC.copy(out, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(total - prefix, 8);
  else out.writeUInt32LE(total - prefix, 8);
  out.write(dict, prefix, 'latin1');
  out[total - 1] = 0x0a;
  return out;
}

/** Little-endian bytes of a Float32Array (a view on little-endian hosts, a swapped copy otherwise). */
export function float32Bytes(a: Float32Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (endianness() === 'LE') return bytes;
  const copy = bytes.slice();
  swapBytes(copy, 4);
  return copy;
}

