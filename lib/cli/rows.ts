/**
 * The library names a bad input value by its argument, row and column ("data contains a
 * non-finite value ... at row 5, column 3"); a command-line user needs the file and the row in
 * it, which differ once the file is split (held-out rows) or streamed in chunks.
 */
import { VaeError } from '../errors';

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
 * Rewrites an ERR_NON_FINITE or ERR_INVALID_ARGUMENT error that names a value of the library
 * argument `argument` by row, so that it names the file and the row in it. Other errors, and
 * errors about other arguments, are returned unchanged.
 */
export function inFile(err: unknown, argument: string, origin: RowOrigin | undefined): unknown {
  if (!origin || !(err instanceof VaeError) || (err.code !== 'ERR_NON_FINITE' && err.code !== 'ERR_INVALID_ARGUMENT')) return err;
  const name = origin.isFile ? JSON.stringify(origin.source) : origin.source;
  const at = / at row (\d+), column (\d+)/;
  const row = at.exec(err.message);
  let message: string | undefined;
  if (err.message.startsWith(`${argument} contains `)) message = name + err.message.slice(argument.length);
  else if (err.message.includes(` for ${argument} but received `)) message = err.message.replace(` for ${argument} but received `, ` in ${name} but received `);
  if (!row || message === undefined) return err;
  const fileRow = origin.firstRow + Number(row[1]);
  return new VaeError(err.code, message.replace(at, ` at data row ${fileRow}, column ${row[2]} (counting from 0)`), { cause: err });
}
