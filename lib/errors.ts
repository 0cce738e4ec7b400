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

/** Every error vae-node throws on purpose is a VaeError with a `.code`. */
export class VaeError extends Error {
  readonly code: VaeErrorCode;
  constructor(code: VaeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VaeError';
    this.code = code;
  }
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
