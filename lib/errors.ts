/** Machine-readable error codes of vae-node. */
export type VaeErrorCode =
  | 'ERR_INVALID_ARGUMENT' // wrong type, shape, range or value of an argument
  | 'ERR_NON_FINITE' // NaN or Infinity in input data
  | 'ERR_BUSY' // the model is training; this call cannot run concurrently
  | 'ERR_ABORTED' // an AbortSignal stopped the work
  | 'ERR_DIVERGED' // training produced a non-finite loss
  | 'ERR_FILE_FORMAT' // a file is malformed, truncated or corrupted
  | 'ERR_IO' // a file could not be read or written
  | 'ERR_NATIVE'; // the native addon failed or could not be loaded

/** What is wrong with one value of a data matrix. */
export type BadValueFault = 'non-finite' | 'outside [0, 1]';

/** Which value of a data matrix an error is about; rows and columns count from 0. */
export interface BadValue {
  readonly fault: BadValueFault;
  /** The argument that holds it, as the message names it: `data`, `options.validationData`, `x`, ... */
  readonly argument: string;
  readonly row: number;
  readonly column: number;
  readonly value: number;
}

/**
 * Every error vae-node throws on purpose is a VaeError with a `.code`. An error about one value
 * of a data matrix (ERR_NON_FINITE, or ERR_INVALID_ARGUMENT for a bernoulli model's target
 * outside [0, 1]) also carries `.badValue`: the argument, row, column and value.
 */
export class VaeError extends Error {
  readonly code: VaeErrorCode;
  readonly badValue?: BadValue;
  constructor(code: VaeErrorCode, message: string, options?: { cause?: unknown; badValue?: BadValue }) {
    super(message, options);
    this.name = 'VaeError';
    this.code = code;
    if (options?.badValue) this.badValue = Object.freeze({ ...options.badValue });
  }
}

/**
 * The error about one bad value, the only place its message is composed (the native addon
 * reports the fields). By default the message names the argument and the row; `place` names
 * something else, such as a file and its data row on the command line.
 */
export function badValueError(bad: BadValue, place?: { subject: string; where: string }, cause?: unknown): VaeError {
  const subject = place?.subject ?? bad.argument;
  const where = place?.where ?? `row ${bad.row}, column ${bad.column}`;
  const value = shortestFloat32(bad.value);
  const options = { badValue: bad, ...(cause === undefined ? {} : { cause }) };
  if (bad.fault === 'non-finite') {
    return new VaeError('ERR_NON_FINITE', `${subject} contains a non-finite value (${value}) at ${where}`, options);
  }
  return new VaeError(
    'ERR_INVALID_ARGUMENT',
    `Expected values in [0, 1] (a bernoulli model's data) for ${subject} but received ${value} at ${where}; ` +
      "scale it (8-bit pixels: divide by 255) or use likelihood 'gaussian'",
    options,
  );
}

/** The shortest decimal that reads back as the same float32 (0.1, not 0.100000001). */
function shortestFloat32(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  for (let digits = 1; digits < 9; digits++) {
    const text = value.toPrecision(digits);
    if (Math.fround(Number(text)) === value) return String(Number(text));
  }
  return String(Number(value.toPrecision(9)));
}

/** Describes a received value for error messages: `3 (number)`, `an Array`, ... */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${String(value)} (${typeof value})`;
  if (typeof value === 'string') return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)} (string)`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length?: number }).length ?? value.byteLength}`;
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an object (${(value as object).constructor?.name ?? 'Object'})`;
}

/** The one error template: "Expected <what> for <name> but received <value>". */
export function invalidArgument(name: string, expected: string, received: unknown): VaeError {
  return new VaeError('ERR_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describe(received)}`);
}
