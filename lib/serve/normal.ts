import { allocateFloats } from '../data/matrix';
import { invalidArgument } from '../errors';

/**
 * A small seeded generator of standard normal draws, for the `eps` inputs of the
 * reconstruct and sample graphs. Seeding in TypeScript (not in the ONNX graph, which
 * takes eps as an input) makes results reproducible across runs, batch sizes and
 * onnxruntime versions.
 *
 * Uniforms come from splitmix32 (a Weyl sequence through the murmur3 finalizer), normals
 * from the Box-Muller transform, using both of each pair. Not cryptographic.
 */
export class NormalGenerator {
  private state: number;
  private spare: number | undefined;

  /** `seed` is a non-negative safe integer; all 53 bits contribute to the stream. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalidArgument('seed', 'a non-negative safe integer', seed);
    const high = Math.floor(seed / 2 ** 32);
    this.state = (seed >>> 0) ^ Math.imul(high, 0x9e3779b1);
  }

  /** The next standard normal draw. */
  next(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const u1 = (this.nextUint32() + 1) / 2 ** 32; // (0, 1], so the log is finite
    const u2 = this.nextUint32() / 2 ** 32;
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.spare = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  }

  /** Fills `out` with successive draws and returns it. */
  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.next();
    return out;
  }

  private nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
}

/**
 * `count` standard normal draws from `seed`; `countName`, the argument that decides count, is
 * named in the error when count is too large to allocate.
 */
export function normalDraws(count: number, seed: number, countName = 'count'): Float32Array {
  return new NormalGenerator(seed).fill(allocateFloats(count, countName));
}

/** A fresh seed for callers that did not give one (so the draws are not reproducible). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}
