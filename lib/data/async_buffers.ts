/**
 * Typed arrays that an async native call reads or writes in place while JavaScript keeps
 * running. The native worker holds a raw pointer into the array's memory, and a reference to
 * the array object does not keep that memory alive or in place:
 *  - a resizable ArrayBuffer can shrink (`buffer.resize`), which unmaps its tail at once;
 *  - any ArrayBuffer can be transferred (`postMessage` with a transfer list, `structuredClone`
 *    with `transfer`, `buffer.transfer()`), after which its new owner may free the memory.
 * Inputs over resizable buffers are therefore copied (the copy has a fixed length), outputs over
 * them refused, and a transfer during a call is detected when it settles: Node-API offers no way
 * to pin a buffer, so that one is the caller's contract (README, "Async calls").
 */
import { invalidArgument, VaeError } from '../errors';
import { Matrix } from './matrix';

function isResizable(array: ArrayBufferView): boolean {
  // Growable SharedArrayBuffers only grow, in place: they are safe.
  const buffer = array.buffer as ArrayBuffer & { resizable?: boolean };
  return !(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) && buffer.resizable === true;
}

/** array itself, or a fixed-length copy when it sits in a resizable ArrayBuffer. */
export function stableArray(array: Float32Array): Float32Array {
  return isResizable(array) ? array.slice() : array;
}

/** stableArray for a Matrix's data. */
export function stableInput(m: Matrix): Matrix {
  const data = stableArray(m.data);
  return data === m.data ? m : { ...m, data };
}

/** Refuses an output array that could shrink while a call writes it. */
export function checkStableOutput(out: Float32Array, name: string): Float32Array {
  if (isResizable(out)) throw invalidArgument(name, 'a Float32Array over a fixed-length ArrayBuffer (a resizable one could shrink while the call writes it)', out);
  return out;
}

/**
 * Throws ERR_INVALID_ARGUMENT when `array` (non-empty when the call started) was detached, i.e.
 * its ArrayBuffer transferred, while an async call used it: its results are not to be trusted.
 */
function checkStillAttached(array: ArrayBufferView, name: string): void {
  if (array.byteLength === 0) {
    throw new VaeError('ERR_INVALID_ARGUMENT', `The ArrayBuffer of ${name} was transferred (detached) while an async call was using it; keep it attached until the call settles`);
  }
}

/**
 * Runs an async call that uses `arrays` (by argument name) in place, and checks that none was
 * detached before it, when it fails (freed memory read as NaN, say, is then explained) and when
 * it succeeds (its results are then void): checkStillAttached's error wins over the call's own.
 */
export async function whileAttached<T>(arrays: Record<string, ArrayBufferView | null | undefined>, call: () => Promise<T>): Promise<T> {
  const check = () => {
    for (const [name, array] of Object.entries(arrays)) if (array) checkStillAttached(array, name);
  };
  check();
  const result = await call().catch((err: unknown) => {
    check();
    throw err;
  });
  check();
  return result;
}
