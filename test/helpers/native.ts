import { loadBinding, NativeOps } from '../../lib/native/binding';
import { uniforms } from './random';

export const binding = loadBinding();
export const ops: NativeOps = binding.ops;

/** Deterministic pseudo-random floats in [lo, hi) (mulberry32), for reproducible tests. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = uniforms(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

/** Standard normal draws (Box-Muller over randomArray). */
export function randomNormal(n: number, seed: number): Float32Array {
  const u = randomArray(2 * n, seed, 0, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - u[2 * i])) * Math.cos(2 * Math.PI * u[2 * i + 1]);
  return out;
}

/** sum(a[i] * b[i]) in double precision. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central finite differences of a scalar function of `x` (perturbed in place),
 * compared with `analytic`. Float32 engines need a fairly large step; the
 * tolerance mixes absolute and relative error.
 */
export function expectGradientsClose(
  x: Float32Array, f: () => number, analytic: Float32Array, options: { h?: number; atol?: number; rtol?: number; indices?: number[] } = {},
): void {
  const h = options.h ?? 1e-2;
  const atol = options.atol ?? 2e-3;
  const rtol = options.rtol ?? 2e-2;
  const indices = options.indices ?? Array.from({ length: x.length }, (_, i) => i);
  const failures: string[] = [];
  for (const i of indices) {
    const saved = x[i];
    x[i] = saved + h;
    const up = f();
    x[i] = saved - h;
    const down = f();
    x[i] = saved;
    const numeric = (up - down) / (2 * h);
    if (Math.abs(numeric - analytic[i]) > atol + rtol * Math.max(Math.abs(numeric), Math.abs(analytic[i]))) {
      failures.push(`[${i}] analytic ${analytic[i]} numeric ${numeric}`);
    }
  }
  expect(failures).toEqual([]);
}
