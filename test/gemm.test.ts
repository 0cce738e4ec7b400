// The SIMD matrix multiply against its scalar twin and the plain triple loop.
import { sameBits } from './helpers/buffers';
import { binding, ops, randomArray } from './helpers/native';

const AUTO = 0, SCALAR = 1, AVX2 = 2, REFERENCE = 3, AVX512 = 4;
const hasAvx2 = binding.cpuInfo().avx2Fma, hasAvx512 = binding.cpuInfo().avx512f;

interface Case { ta: number; tb: number; M: number; N: number; K: number; alpha: number; beta: number; pad: number }

function run(c: Case, backend: number, threads: number, seed: number): Float32Array {
  const { ta, tb, M, N, K, alpha, beta, pad } = c;
  const aRows = ta ? K : M, aCols = ta ? M : K, bRows = tb ? N : K, bCols = tb ? K : N;
  const lda = aCols + pad, ldb = bCols + pad, ldc = N + pad;
  const A = randomArray(aRows * lda, seed), B = randomArray(bRows * ldb, seed + 1);
  const C = randomArray(M * ldc, seed + 2);
  if (beta === 0 && pad === 0) C.fill(NaN, 0, Math.min(C.length, 7)); // beta = 0 must overwrite, even NaN
  ops.sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads, backend);
  return C;
}

function maxScaledError(got: Float32Array, want: Float32Array, K: number): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return worst / Math.sqrt(K);
}

const sizes = [1, 3, 17, 63, 400, 784];
const cases: Case[] = [];
let i = 0;
for (const M of sizes)
  for (const N of [1, 3, 17, 63, 400, 784])
    for (const K of [1, 3, 17, 63, 400, 784]) {
      // A representative, deterministic subset: every size appears in every position.
      if ((M * 7 + N * 3 + K) % 5 !== 0 && !(M === 1 || N === 1 || K === 1)) continue;
      if (M * N * K > 784 * 400 * 400) continue;
      // alpha = 1 with beta 0 or 1 takes the kernels' plain epilogue (store or add), others the general one.
      const alpha = i % 5 < 2 ? 1 : 1.25;
      cases.push({ ta: i % 2, tb: (i >> 1) % 2, M, N, K, alpha, beta: i % 3 === 0 ? 1 : 0, pad: i % 4 === 1 ? 3 : 0 });
      i++;
    }
// The shapes the classic model uses, in all three forms (forward, input gradient, weight gradient).
for (const [M, N, K, ta, tb] of [
  [128, 400, 784, 0, 0], [128, 40, 400, 0, 0], [128, 400, 20, 0, 0], [128, 784, 400, 0, 0],
  [128, 400, 40, 0, 1], [128, 20, 400, 0, 1], [128, 400, 784, 0, 1],
  [784, 400, 128, 1, 0], [400, 40, 128, 1, 0], [20, 400, 128, 1, 0], [400, 784, 128, 1, 0],
])
  cases.push({ ta, tb, M, N, K, alpha: 1, beta: ta ? 1 : 0, pad: 0 });

describe('sgemm', () => {
  test.each(cases.map((c) => [`${c.ta ? 'T' : 'N'}${c.tb ? 'T' : 'N'} M=${c.M} N=${c.N} K=${c.K} alpha=${c.alpha} beta=${c.beta} pad=${c.pad}`, c]))(
    '%s: scalar and SIMD match the reference',
    (_name, c) => {
      const want = run(c, REFERENCE, 1, 5);
      expect(maxScaledError(run(c, SCALAR, 1, 5), want, c.K)).toBeLessThan(1e-6);
      if (hasAvx2) {
        const avx2 = run(c, AVX2, 1, 5);
        expect(maxScaledError(avx2, want, c.K)).toBeLessThan(1e-6);
        // The AVX-512 micro-kernel does the same multiply-adds in the same order.
        if (hasAvx512) expect(sameBits(run(c, AVX512, 1, 5), avx2)).toBe(true);
      }
      expect(run(c, AUTO, 2, 5).some(Number.isNaN)).toBe(false);
    },
  );

  test('results are bit-identical for 1 and 2 threads', () => {
    for (const c of cases.filter((x) => x.M * x.N * x.K > 1e6)) {
      const one = run(c, AUTO, 1, 9), two = run(c, AUTO, 2, 9);
      expect(sameBits(two, one)).toBe(true);
    }
  });

  // The fused epilogue (bias, relu, relu backward mask) on every backend, ragged edges included.
  test.each([
    [0, 0, 128, 400, 784], [0, 1, 128, 400, 784], [0, 1, 17, 63, 40], [0, 1, 5, 20, 400], [1, 0, 63, 17, 3], [0, 0, 1, 3, 17],
  ])('epilogue %i%i M=%i N=%i K=%i: bias, relu and relu mask match the reference', (ta, tb, M, N, K) => {
    const A = randomArray(M * K, 21), B = randomArray(K * N, 22), bias = randomArray(N, 23), mask = randomArray(M * N, 24);
    for (let i = 0; i < mask.length; i += 7) mask[i] = 0; // exact zeros: relu's output is 0 there, gradient 0
    const lda = ta ? M : K, ldb = tb ? K : N;
    for (const [useBias, relu, useMask] of [[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]]) {
      const runWith = (backend: number, threads: number) => {
        const C = randomArray(M * N, 25);
        ops.sgemm(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N, threads, backend, useBias ? bias : null, relu, useMask ? mask : null);
        return C;
      };
      const want = runWith(REFERENCE, 1);
      if (relu) expect(want.some((v) => v === 0)).toBe(true);
      if (useMask) for (let i = 0; i < mask.length; i++) if (!(mask[i] > 0)) expect(want[i]).toBe(0);
      expect(maxScaledError(runWith(SCALAR, 1), want, K)).toBeLessThan(1e-6);
      if (hasAvx2) expect(maxScaledError(runWith(AVX2, 2), want, K)).toBeLessThan(1e-6);
      if (hasAvx512) expect(sameBits(runWith(AVX512, 2), runWith(AVX2, 1))).toBe(true);
    }
  });

  // A B packed beforehand (the model's weights): Shallow K blocks as sgemm's own, or Deep
  // ones (up to 1024 rows: K = 784 is one block instead of three, K = 2100 three of 700).
  const NONE = 0, SHALLOW = 1, DEEP = 2;
  const prepacked = (ta: number, tb: number, M: number, N: number, K: number, backend: number, threads: number, prepack: number, epilogue: boolean) => {
    const A = randomArray(M * K, 31), B = randomArray(K * N, 32), bias = randomArray(N, 33), mask = randomArray(M * N, 34);
    for (let i = 0; i < mask.length; i += 5) mask[i] = 0;
    const C = randomArray(M * N, 35);
    ops.sgemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 1, C, N, threads, backend,
      epilogue ? bias : null, epilogue ? 1 : 0, epilogue ? mask : null, prepack);
    return C;
  };
  const packedShapes = [[0, 0, 37, 400, 784], [0, 1, 64, 400, 784], [0, 0, 13, 40, 2100], [0, 1, 7, 17, 1100], [1, 0, 20, 33, 784], [0, 0, 5, 3, 1]];

  test.each(packedShapes)('a prepacked B (%i%i M=%i N=%i K=%i), shallow or deep K blocks, matches the reference', (ta, tb, M, N, K) => {
    for (const epilogue of [false, true]) {
      const want = prepacked(ta, tb, M, N, K, REFERENCE, 1, NONE, epilogue);
      for (const prepack of [SHALLOW, DEEP]) {
        expect(maxScaledError(prepacked(ta, tb, M, N, K, SCALAR, 1, prepack, epilogue), want, K)).toBeLessThan(1e-6);
        if (hasAvx2) expect(maxScaledError(prepacked(ta, tb, M, N, K, AVX2, 2, prepack, epilogue), want, K)).toBeLessThan(1e-6);
        if (hasAvx512) expect(sameBits(prepacked(ta, tb, M, N, K, AVX512, 2, prepack, epilogue), prepacked(ta, tb, M, N, K, AVX2, 1, prepack, epilogue))).toBe(true);
      }
    }
  });

  test('shallow prepacked B gives the bits of an unpacked one; deep ones are the same for any thread count', () => {
    // Training relies on the first: which of the two a forward product uses depends on the rows per thread.
    for (const [ta, tb, M, N, K] of packedShapes) {
      const plain = prepacked(ta, tb, M, N, K, AUTO, 1, NONE, true);
      expect(sameBits(prepacked(ta, tb, M, N, K, AUTO, 1, SHALLOW, true), plain)).toBe(true);
      expect(sameBits(prepacked(ta, tb, M, N, K, AUTO, 2, SHALLOW, true), plain)).toBe(true);
      const deep = prepacked(ta, tb, M, N, K, AUTO, 1, DEEP, true);
      for (const threads of [2, 3]) expect(sameBits(prepacked(ta, tb, M, N, K, AUTO, threads, DEEP, true), deep)).toBe(true);
    }
    // More than one K block: the deep blocking really is another summation order.
    expect(sameBits(prepacked(0, 0, 37, 400, 784, AUTO, 1, DEEP, false), prepacked(0, 0, 37, 400, 784, AUTO, 1, SHALLOW, false))).toBe(false);
  });

  test('rejects buffers too small for the shape instead of overrunning them', () => {
    const A = new Float32Array(10), B = new Float32Array(10), C = new Float32Array(10);
    expect(() => ops.sgemm(0, 0, 4, 4, 4, 1, A, 4, B, 4, 0, C, 4, 1, AUTO)).toThrow(/Float32Array of at least 16/);
    expect(() => ops.sgemm(0, 0, 2, 2, 2, 1, A, 1, B, 2, 0, C, 2, 1, AUTO)).toThrow(/leading dimensions/);
  });
});
