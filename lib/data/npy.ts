/**
 * NumPy .npy files: whole-file reading and writing. Supports format versions 1.0-3.0,
 * little-endian float32/float64/(u)int8-64/bool data in C order; N-D arrays are read as
 * rows = shape[0] with the trailing dims flattened into columns.
 * For files larger than memory use openNpyRows / NpyRowWriter (re-exported from npy-stream.ts).
 */
import { invalidArgument } from '../errors';
import { Matrix, resolveScale, toMatrix } from './matrix';
import { formatError, readFileChecked, writeFileAtomic } from './io';
import { NpyArray, float32Bytes, npyDataBytes, npyFloat32Header, npyMatrixShape, npyTypedArray, parseNpyHeader, toFloat32 } from './npy-format';

export * from './npy-format';
export * from './npy-stream';

/** Decodes a whole .npy buffer. */
export function parseNpy(buf: Uint8Array, file = '<buffer>'): NpyArray {
  const h = parseNpyHeader(buf, file);
  const need = npyDataBytes(h);
  const have = buf.length - h.dataOffset;
  if (have < need) {
    throw formatError(file, `truncated .npy data: shape (${h.shape.join(', ')}) of ${h.dtype} needs ${h.dataOffset + need} bytes (header ${h.dataOffset} + data ${need}) but the file has ${buf.length}`);
  }
  return { dtype: h.dtype, shape: h.shape, data: npyTypedArray(buf.subarray(h.dataOffset, h.dataOffset + need), h.dtype) };
}

/** Reads a whole .npy file into memory. For files larger than RAM use openNpyRows. */
export async function readNpy(file: string): Promise<NpyArray> {
  return parseNpy(await readFileChecked(file), file);
}

/**
 * Reads a .npy file as a float32 Matrix (rows = shape[0], trailing dims flattened to columns).
 * `scale: 'auto'` (default) maps uint8 to [0, 1]; other dtypes are converted unscaled.
 */
export async function readNpyMatrix(file: string, options: { scale?: number | 'auto' } = {}): Promise<Matrix> {
  const buf = await readFileChecked(file);
  const h = parseNpyHeader(buf, file);
  const { rows, cols } = npyMatrixShape(h, file);
  if (rows * cols === 0) throw formatError(file, `the .npy array of shape (${h.shape.join(', ')}) is empty`);
  const arr = parseNpy(buf, file);
  return { data: toFloat32(arr.data, resolveScale(options.scale, h.dtype === 'uint8')), rows, cols };
}

/** Encodes a Matrix as a float32 2-D .npy buffer. */
export function encodeNpy(m: Matrix): Buffer {
  const x = toMatrix(m, undefined, 'matrix');
  return Buffer.concat([npyFloat32Header([x.rows, x.cols]), float32Bytes(x.data)]);
}

/** Writes a Matrix as a float32 2-D .npy file atomically (readable by np.load). */
export async function writeNpy(file: string, m: Matrix): Promise<void> {
  if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a non-empty path string', file);
  await writeFileAtomic(file, encodeNpy(m));
}
