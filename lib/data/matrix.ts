import { invalidArgument, VaeError } from '../errors';

/**
 * A dense row-major float32 matrix: row i is `data.subarray(i * cols, (i + 1) * cols)`.
 * Plain data (no class) so it can cross worker boundaries and be built from any loader.
 */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0;
}

/** True when `x` is a well-formed Matrix (a Float32Array of exactly rows * cols values). */
export function isMatrix(x: unknown): x is Matrix {
  if (x === null || typeof x !== 'object') return false;
  const m = x as Partial<Matrix>;
  return m.data instanceof Float32Array && isCount(m.rows) && isCount(m.cols) && m.data.length === m.rows * m.cols;
}

/**
 * Normalises user input to a Matrix without copying.
 * Accepts a Matrix (whose `cols` must equal `cols` when given) or a flat Float32Array
 * whose length is a non-zero multiple of `cols`. `name` is the argument name used in errors,
 * so the caller's user sees which of their arguments was wrong.
 */
export function toMatrix(x: Float32Array | Matrix, cols: number | undefined, name: string): Matrix {
  if (cols !== undefined && !isCount(cols)) throw invalidArgument('cols', 'a positive integer', cols);
  if (x instanceof Float32Array) {
    if (cols === undefined) throw invalidArgument(name, 'a Matrix (a flat Float32Array needs a column count)', x);
    if (x.length === 0 || x.length % cols !== 0) {
      throw invalidArgument(name, `a non-empty Float32Array whose length is a multiple of ${cols}`, x);
    }
    return { data: x, rows: x.length / cols, cols };
  }
  if (isMatrix(x)) {
    if (cols !== undefined && x.cols !== cols) {
      throw invalidArgument(`${name}.cols`, `${cols} columns`, x.cols);
    }
    return x;
  }
  throw invalidArgument(name, 'a Float32Array or a Matrix { data: Float32Array, rows, cols } with data.length === rows * cols', x);
}

/** Row i of m as a view (no copy). */
export function row(m: Matrix, i: number): Float32Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Rows [start, end) of m as a Matrix view (no copy). */
export function sliceRows(m: Matrix, start: number, end: number): Matrix {
  const s = Math.max(0, Math.min(start, m.rows));
  const e = Math.max(s, Math.min(end, m.rows));
  return { data: m.data.subarray(s * m.cols, e * m.cols), rows: e - s, cols: m.cols };
}

/** `scale: 'auto'` divides uint8 data by 255 (pixels to [0, 1]) and leaves other dtypes alone. */
export interface ScaleOptions {
  scale?: number | 'auto';
}

/** Resolves a ScaleOptions value to a multiplier for data of the given dtype. */
export function resolveScale(scale: number | 'auto' | undefined, isUint8: boolean): number {
  if (scale === undefined || scale === 'auto') return isUint8 ? 1 / 255 : 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw invalidArgument('options.scale', "a finite number or 'auto'", scale);
  return scale;
}

/**
 * A zeroed Float32Array of `length` values for a result whose size the argument `name` decides
 * (rows, n): a typed error instead of a bare RangeError when no such array can be made.
 */
export function allocateFloats(length: number, name: string): Float32Array {
  try {
    return new Float32Array(length);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new VaeError('ERR_INVALID_ARGUMENT', `${name} asks for a result of ${length} float32 values (${(length * 4 / 2 ** 30).toFixed(1)} GiB), which cannot be allocated: ${err.message}`, { cause: err });
  }
}
