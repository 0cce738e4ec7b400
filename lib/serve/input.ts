import { badValueError, invalidArgument } from '../errors';
import { toMatrix, type Matrix } from '../data/matrix';

/** What the serving methods accept: a flat row-major Float32Array or a Matrix. */
export type MatrixInput = Float32Array | Matrix;

/**
 * Checks a serving input against the model's width and returns it as a Matrix (no copy).
 * onnxruntime would accept NaN and return NaN, so non-finite values are refused here,
 * with the row and column that hold them.
 */
export function checkInput(value: MatrixInput, cols: number, name: string, rows?: number): Matrix {
  const matrix = toMatrix(value, cols, name);
  if (rows !== undefined && matrix.rows !== rows) {
    throw invalidArgument(name, `${rows} rows of ${cols} values (one per input row)`, value);
  }
  const bad = matrix.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw badValueError({ fault: 'non-finite', argument: name, row: Math.floor(bad / cols), column: bad % cols, value: matrix.data[bad] });
  }
  return matrix;
}
