// The fused, vectorized training kernels against the libm reference ops and each other.
import { binding, ops, randomArray } from './helpers/native';

const AUTO = 0, PORTABLE = 1, AVX2 = 2;
const kernels = binding.cpuInfo().avx2Fma ? [PORTABLE, AVX2] : [PORTABLE];

describe('fused hidden-layer activations', () => {
  const n = 3001;
  const x = randomArray(n, 8, -12, 12);
  x.set([0, -0, 1e-8, -1e-8, 1e-4, -1e-4, 0.3, -0.3, 0.49, 0.51, -0.51, 9, -9, 40, -40, 88, -88, 100, -100, 1e30, -1e30], 0);
  const names = ['relu', 'leaky_relu', 'tanh', 'sigmoid', 'softplus'];

  test.each(kernels)('kernel %i matches the libm forms (relative 1e-6, absolute 2e-7)', (kernel) => {
    for (let kind = 0; kind < 5; kind++) {
      const ref = new Float32Array(n), got = new Float32Array(n);
      ops.activationForward(kind, ref, x);
      ops.activationFused(kind, got, x, kernel);
      for (let i = 0; i < n; i++) {
        const err = Math.abs(got[i] - ref[i]);
        if (err > 2e-7 && err > 1e-6 * Math.abs(ref[i])) throw new Error(`${names[kind]}(${x[i]}): ${got[i]} vs ${ref[i]}`);
      }
    }
  });

  test.each(kernels)('kernel %i backward matches the reference ops (relative 1e-6)', (kernel) => {
    const dout = randomArray(n, 9, -2, 2);
    for (let kind = 0; kind < 5; kind++) {
      const out = new Float32Array(n), ref = new Float32Array(n), got = new Float32Array(n);
      ops.activationFused(kind, out, x, kernel);
      ops.activationBackward(kind, ref, dout, out);
      ops.activationBackwardFused(kind, got, dout, out, kernel);
      for (let i = 0; i < n; i++) {
        const err = Math.abs(got[i] - ref[i]);
        if (err > 1e-7 && err > 1e-6 * Math.abs(ref[i])) throw new Error(`${names[kind]}' at ${x[i]}: ${got[i]} vs ${ref[i]}`);
      }
    }
  });

  test('in place gives the same values, and the SIMD and portable builds agree', () => {
    for (let kind = 0; kind < 5; kind++) {
      const a = new Float32Array(n), b = x.slice();
      ops.activationFused(kind, a, x, PORTABLE);
      ops.activationFused(kind, b, b, kernels[kernels.length - 1]);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(a[i])));
      expect(worst).toBeLessThan(1e-6);
    }
  });
});

describe('fused sigmoid (the decoder output transform: activationFused, kind 3, in place)', () => {
  const n = 2003; // not a multiple of 8
  const logits = randomArray(n, 7, -40, 40);
  logits.set([0, -0, 1e-8, -1e-8, 15, -15, 87, -87, 88, -88, 100, -100, 1e30, -1e30], 0);
  const ref = new Float32Array(n);
  ops.activationForward(3, ref, logits); // libm: 1 / (1 + exp(-x))

  test.each(kernels)('kernel %i is within 1e-7 of the libm sigmoid, and within 2e-6 relative', (kernel) => {
    const y = logits.slice();
    ops.activationFused(3, y, y, kernel);
    for (let i = 0; i < n; i++) {
      const err = Math.abs(y[i] - ref[i]);
      if (err > 1e-7 || (ref[i] > 1e-30 && err > 2e-6 * ref[i])) throw new Error(`x=${logits[i]}: ${y[i]} vs ${ref[i]}`);
      if (!(y[i] >= 0 && y[i] <= 1)) throw new Error(`out of [0, 1] at x=${logits[i]}`);
    }
  });

  test('SIMD and portable builds agree', () => {
    if (kernels.length < 2) return;
    const a = logits.slice(), b = logits.slice();
    ops.activationFused(3, a, a, PORTABLE);
    ops.activationFused(3, b, b, AVX2);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-7);
  });
});

describe('fused Bernoulli loss and gradient', () => {
  // Logits from tiny to huge, grey-level targets, a length that is not a multiple of 8 or 1024.
  const n = 3001;
  const logits = randomArray(n, 1, -30, 30);
  logits.set([0, -0, 1e-8, -1e-8, 88, -88, 200, -200, 1e30, -1e30], 0);
  const target = randomArray(n, 2, 0, 1);
  const refGrad = new Float32Array(n);
  ops.lossBackward(0, refGrad, logits, target, 0.25);
  const refLoss = ops.lossForward(0, logits, target);

  test.each(kernels)('kernel %i matches the reference loss and gradient', (kernel) => {
    const grad = new Float32Array(n);
    const loss = ops.bceFused(grad, logits, target, 0.25, kernel);
    expect(Math.abs(loss - refLoss) / refLoss).toBeLessThan(1e-6);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(grad[i] - refGrad[i]));
    expect(worst).toBeLessThan(1e-7);
  });

  test('each element is accurate, including log1p(exp(-|l|)) for large |l|', () => {
    for (const l of [0, 0.3, 1, 5, 17, 40, 87, 100]) {
      const logit = new Float32Array([l, -l]), x = new Float32Array([0.3, 0.7]), g = new Float32Array(2);
      const exact = [l, -l].map((v, i) => Math.max(v, 0) - x[i] * v + Math.log1p(Math.exp(-Math.abs(v)))).reduce((a, b) => a + b);
      const fused = ops.bceFused(g, logit, x, 1, AUTO);
      expect(Math.abs(fused - exact)).toBeLessThan(1e-6 * Math.max(1, exact));
    }
  });

  test('SIMD and portable builds agree bit for bit', () => {
    if (kernels.length < 2) return;
    const a = new Float32Array(n), b = new Float32Array(n);
    const la = ops.bceFused(a, logits, target, 0.5, PORTABLE);
    const lb = ops.bceFused(b, logits, target, 0.5, AVX2);
    expect(Math.abs(la - lb)).toBeLessThan(1e-6 * Math.abs(la));
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-7);
  });
});

describe('fused Adam', () => {
  test.each(kernels)('kernel %i matches a float64 Adam step', (kernel) => {
    const n = 1037;
    const p = randomArray(n, 3), g = randomArray(n, 4), m = randomArray(n, 5, -0.1, 0.1), v = randomArray(n, 6, 0, 0.01);
    const hyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };
    const step = 5;
    const expected = Array.from(p, (pi, i) => {
      const mi = 0.9 * m[i] + 0.1 * g[i];
      const vi = 0.999 * v[i] + 0.001 * g[i] * g[i];
      const mh = mi / (1 - 0.9 ** step), vh = vi / (1 - 0.999 ** step);
      return pi - 1e-3 * mh / (Math.sqrt(vh) + 1e-8) - 1e-3 * 0.01 * pi;
    });
    ops.adamUpdate(p, g, m, v, hyper, step, 1, kernel);
    for (let i = 0; i < n; i++) expect(Math.abs(p[i] - expected[i])).toBeLessThan(1e-6);
  });
});

describe('fused latent layer (head split, reparameterization, KL)', () => {
  // 37 rows of d = 13 (not a multiple of 8); log-variances from -30 to 30, with exact zeros and tiny values.
  const B = 37, d = 13, n = B * d;
  const head = randomArray(2 * n, 40, -3, 3);
  for (let r = 0; r < B; r++) for (let i = 0; i < d; i++) if ((r + i) % 5 === 0) head[2 * r * d + d + i] = [-30, -1e-6, 0, 1e-4, 30][(r + i) % 25 / 5];
  const eps = randomArray(n, 41, -3, 3), dz = randomArray(n, 42, -1, 1);

  // The reference: the separate libm-based ops of ops.h.
  const refMean = new Float32Array(n), refLogvar = new Float32Array(n), refZ = new Float32Array(n);
  ops.gaussianHeadForward(refMean, refLogvar, head, B, d);
  ops.reparameterizeForward(refZ, refMean, refLogvar, eps);
  const refKl = ops.klForward(refMean, refLogvar);
  const dmean = new Float32Array(n), dlogvar = new Float32Array(n), refDhead = new Float32Array(2 * n);
  ops.reparameterizeBackward(dmean, dlogvar, dz, refLogvar, eps);
  ops.klBackward(dmean, dlogvar, refMean, refLogvar, 0.3);
  ops.gaussianHeadBackward(refDhead, dmean, dlogvar, B, d);

  // Error relative to the size of the terms summed (z = mean + sigma * eps may cancel to ~0).
  const close = (got: Float32Array, want: Float32Array, terms: (i: number) => number) => {
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-6 + terms(i)));
    return worst;
  };
  const sigma = (i: number) => Math.exp(0.5 * refLogvar[i]);
  const zTerms = (i: number) => Math.abs(refMean[i]) + Math.abs(sigma(i) * eps[i]);
  const dheadTerms = (j: number) => {
    const r = Math.floor(j / (2 * d)), i = r * d + (j % (2 * d)) % d;
    return j % (2 * d) < d ? Math.abs(dz[i]) + 0.3 * Math.abs(refMean[i])
      : Math.abs(dz[i] * eps[i] * 0.5 * sigma(i)) + 0.15 * Math.abs(Math.expm1(refLogvar[i]));
  };

  test.each(kernels)('kernel %i matches the separate reference ops', (kernel) => {
    const mean = new Float32Array(n), logvar = new Float32Array(n), z = new Float32Array(n), dhead = new Float32Array(2 * n);
    const kl = ops.latentForward(mean, logvar, z, head, eps, B, d, kernel);
    expect(Array.from(mean)).toEqual(Array.from(refMean));
    expect(Array.from(logvar)).toEqual(Array.from(refLogvar));
    expect(close(z, refZ, zTerms)).toBeLessThan(1e-6);
    expect(Math.abs(kl - refKl) / refKl).toBeLessThan(1e-6);
    ops.latentBackward(dhead, dz, mean, logvar, eps, 0.3, B, d, kernel);
    expect(close(dhead, refDhead, dheadTerms)).toBeLessThan(1e-6);
  });

  test.each(kernels)('kernel %i: a NaN carries through exp into z, the KL and the losses', (kernel) => {
    // What a diverging step sees; training reports the non-finite loss instead of clamping it away.
    const z = new Float32Array(2);
    expect(ops.latentForward(new Float32Array(2), new Float32Array(2), z, new Float32Array([0, 0, NaN, 1]), new Float32Array([1, 1]), 1, 2, kernel)).toBeNaN();
    expect(z[0]).toBeNaN();
    expect(ops.bceFused(new Float32Array(9), new Float32Array(9).fill(NaN, 4, 5), new Float32Array(9), 1, kernel)).toBeNaN();
    for (const kind of [2, 3, 4]) {  // tanh, sigmoid, softplus
      const out = new Float32Array(9);
      ops.activationFused(kind, out, new Float32Array(9).fill(NaN, 8), kernel);
      expect(out[8]).toBeNaN();
      expect(out.slice(0, 8).every(Number.isFinite)).toBe(true);
    }
  });

  test.each(kernels)('kernel %i: a KL term that overflows is infinite, not clamped', (kernel) => {
    const one = new Float32Array(1);
    expect(ops.latentForward(one, new Float32Array(1), new Float32Array(1), new Float32Array([0, 95]), new Float32Array(1), 1, 1, kernel)).toBe(Infinity);
    expect(Number.isFinite(ops.latentForward(one, new Float32Array(1), new Float32Array(1), new Float32Array([0, 80]), new Float32Array(1), 1, 1, kernel))).toBe(true);
  });
});
