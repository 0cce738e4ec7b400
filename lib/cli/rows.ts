/**
 * The library names a bad input value by its argument, row and column ("data contains a
 * non-finite value (NaN) at row 5, column 3"; the fields are in VaeError.badValue); a
 * command-line user needs the file and the row in it, which differ once the file is split
 * (held-out rows) or streamed in chunks.
 */
import { badValueError, VaeError } from '../errors';

/** Where row 0 of a matrix sits: `source` is a file (quoted in messages) or a description. */
export interface RowOrigin {
  source: string;
  isFile: boolean;
  firstRow: number;
}

export function fileRows(file: string, firstRow = 0): RowOrigin {
  return { source: file, isFile: true, firstRow };
}

/** Rows that come from something other than one file, such as a split of a directory. */
export function described(source: string): RowOrigin {
  return { source, isFile: false, firstRow: 0 };
}

/** The origin of rows [offset, ...) of a matrix whose rows come from `origin`. */
export function shifted(origin: RowOrigin | undefined, offset: number): RowOrigin | undefined {
  return origin && { ...origin, firstRow: origin.firstRow + offset };
}

/**
 * An error about one value of the library argument `argument` (VaeError.badValue), restated to
 * name the file and the row in it. Other errors, and errors about other arguments, are returned
 * unchanged.
 */
export function inFile(err: unknown, argument: string, origin: RowOrigin | undefined): unknown {
  const bad = err instanceof VaeError ? err.badValue : undefined;
  if (!origin || !bad || bad.argument !== argument) return err;
  const subject = origin.isFile ? JSON.stringify(origin.source) : origin.source;
  const where = `data row ${origin.firstRow + bad.row}, column ${bad.column} (counting from 0)`;
  return badValueError(bad, { subject, where }, err);
}
