// The fused, vectorized training kernels against the libm reference ops and each other.
import { binding, ops, randomArray } from './helpers/native';

const AUTO = 0, PORTABLE = 1, AVX2 = 2;
const kernels = binding.cpuInfo().avx2Fma ? [PORTABLE, AVX2] : [PORTABLE];

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
