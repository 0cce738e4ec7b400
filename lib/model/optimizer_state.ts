import { invalidArgument, VaeError } from '../errors';

// A bad element of a moment vector (not a data matrix's BadValue: these have no rows).
function badElement(name: string, expected: string, value: number, index: number): VaeError {
  return new VaeError('ERR_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${value} at index ${index}`);
}

/** Training state carried in model files so training can resume exactly. */
export interface OptimizerState {
  /** Adam's first moments, one per parameter: finite. */
  m: Float32Array;
  /** Adam's second moments, one per parameter: finite and >= 0 (the update divides by their root). */
  v: Float32Array;
  /** Adam steps taken so far (bias correction): an integer in [0, 2^52]. */
  step: number;
  /** The training RNG (shuffling, noise): 12 words. */
  rngState: Uint32Array;
}

/** The most Adam steps the native side accepts (2^52: exact in a double and in an int64). */
export const MAX_ADAM_STEP = 2 ** 52;
const RNG_WORDS = 12;

/** Validates state for a model of `parameters` parameters; throws ERR_INVALID_ARGUMENT naming the field. */
export function checkOptimizerState(state: OptimizerState, parameters: number): OptimizerState {
  if (state === null || typeof state !== 'object') throw invalidArgument('state', 'an object { m, v, step, rngState } as getOptimizerState() returns', state);
  const { m, v, step, rngState } = state;
  for (const [name, moments] of [['state.m', m], ['state.v', v]] as const) {
    if (!(moments instanceof Float32Array) || moments.length !== parameters) throw invalidArgument(name, `a Float32Array of ${parameters} values`, moments);
  }
  for (let i = 0; i < parameters; i++) {
    if (!Number.isFinite(m[i])) throw badElement('state.m', 'finite values', m[i], i);
    if (!Number.isFinite(v[i]) || v[i] < 0) throw badElement('state.v', 'finite values >= 0', v[i], i);
  }
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 0 || step > MAX_ADAM_STEP) {
    throw invalidArgument('state.step', `an integer in [0, 2^52]`, step);
  }
  if (!(rngState instanceof Uint32Array) || rngState.length !== RNG_WORDS) throw invalidArgument('state.rngState', `a Uint32Array of ${RNG_WORDS} words`, rngState);
  checkRngState(rngState);
  return state;
}

/**
 * The native Rng::get_state layout, as 32-bit words: [0, 8) the xoshiro256 state, which must not
 * be all zero (the generator would return 0 forever and a shuffle never end); 8 whether a spare
 * normal draw is held (0 or 1), 9 zero; 10 the spare's float32 bits (finite, or every parameter
 * would turn NaN), 11 zero.
 */
function checkRngState(words: Uint32Array): void {
  const bad = (what: string) => new VaeError('ERR_INVALID_ARGUMENT', `Expected a state written by getOptimizerState() for state.rngState but received words with ${what}`);
  if (words.subarray(0, 8).every((w) => w === 0)) throw bad('an all-zero generator state');
  if (words[8] > 1 || words[9] !== 0 || words[11] !== 0) throw bad('a spare flag other than 0 or 1, or non-zero padding');
  if (!Number.isFinite(new Float32Array(words.slice(10, 11).buffer)[0])) throw bad('a non-finite spare draw');
}
