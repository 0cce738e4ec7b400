// Finite-difference checks of every op's backward pass, and of the whole model's loss.
import { ACTIVATIONS } from '../lib/model/types';
import { binding, dot, expectGradientsClose, ops, randomArray, randomNormal } from './helpers/native';
import { sameBits } from './helpers/buffers';

describe('dense layer', () => {
  const B = 3, K = 5, N = 4;
  const input = randomArray(B * K, 1);
  const W = randomArray(K * N, 2);
  const b = randomArray(N, 3);
  const r = randomArray(B * N, 4); // upstream gradient: L = sum(r * out)
  const loss = () => {
    const out = new Float32Array(B * N);
    ops.denseForward(out, input, W, b, B, K, N);
    return dot(out, r);
  };
  const din = new Float32Array(B * K), dW = new Float32Array(K * N), db = new Float32Array(N);
  ops.denseBackward(din, dW, db, r, input, W, B, K, N);

  test('forward matches x W + b', () => {
    const out = new Float32Array(B * N);
    ops.denseForward(out, input, W, b, B, K, N);
    for (let i = 0; i < B; i++)
      for (let j = 0; j < N; j++) {
        let s = b[j];
        for (let k = 0; k < K; k++) s += input[i * K + k] * W[k * N + j];
        expect(out[i * N + j]).toBeCloseTo(s, 5);
      }
  });
  test('d/dinput', () => expectGradientsClose(input, loss, din));
  test('d/dW', () => expectGradientsClose(W, loss, dW));
  test('d/db', () => expectGradientsClose(b, loss, db));
  test('backward accumulates into dW and db; din may be skipped', () => {
    const dW2 = dW.slice(), db2 = db.slice();
    ops.denseBackward(null, dW2, db2, r, input, W, B, K, N);
    for (let i = 0; i < dW.length; i++) expect(dW2[i]).toBeCloseTo(2 * dW[i], 5);
    for (let i = 0; i < db.length; i++) expect(db2[i]).toBeCloseTo(2 * db[i], 5);
  });
});

describe.each(ACTIVATIONS.map((name, kind) => [name, kind] as const))('activation %s', (_name, kind) => {
  test('backward matches finite differences (away from the relu kink)', () => {
    const x = randomArray(64, 10 + kind, -3, 3).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));
    const r = randomArray(64, 20 + kind);
    const f = () => {
      const y = new Float32Array(x.length);
      ops.activationForward(kind, y, x);
      return dot(y, r);
    };
    const y = new Float32Array(x.length);
    ops.activationForward(kind, y, x);
    const dx = new Float32Array(x.length);
    ops.activationBackward(kind, dx, r, y);
    expectGradientsClose(x, f, dx, { h: 1e-3 });
  });
  test('forward is finite for extreme inputs', () => {
    const x = new Float32Array([-1e30, -100, -1, 0, 1, 100, 1e30]);
    const y = new Float32Array(x.length);
    ops.activationForward(kind, y, x);
    for (const v of y) expect(Number.isFinite(v)).toBe(true);
  });
});

describe('gaussian head split', () => {
  test('forward splits columns, backward joins them', () => {
    const B = 2, d = 3;
    const head = Float32Array.from({ length: 2 * B * d }, (_, i) => i);
    const mean = new Float32Array(B * d), logvar = new Float32Array(B * d);
    ops.gaussianHeadForward(mean, logvar, head, B, d);
    expect(Array.from(mean)).toEqual([0, 1, 2, 6, 7, 8]);
    expect(Array.from(logvar)).toEqual([3, 4, 5, 9, 10, 11]);
    const dhead = new Float32Array(2 * B * d);
    ops.gaussianHeadBackward(dhead, mean, logvar, B, d);
    expect(Array.from(dhead)).toEqual(Array.from(head));
  });
});

describe('reparameterization', () => {
  const n = 12;
  const mean = randomArray(n, 30), logvar = randomArray(n, 31, -2, 1), eps = randomNormal(n, 32), r = randomArray(n, 33);
  const f = () => {
    const z = new Float32Array(n);
    ops.reparameterizeForward(z, mean, logvar, eps);
    return dot(z, r);
  };
  const dmean = new Float32Array(n), dlogvar = new Float32Array(n);
  ops.reparameterizeBackward(dmean, dlogvar, r, logvar, eps);
  test('forward is mean + exp(logvar/2) * eps', () => {
    const z = new Float32Array(n);
    ops.reparameterizeForward(z, mean, logvar, eps);
    for (let i = 0; i < n; i++) expect(z[i]).toBeCloseTo(mean[i] + Math.exp(logvar[i] / 2) * eps[i], 5);
  });
  test('d/dmean', () => expectGradientsClose(mean, f, dmean, { h: 1e-3 }));
  test('d/dlogvar', () => expectGradientsClose(logvar, f, dlogvar, { h: 1e-3 }));
});

describe('analytic KL', () => {
  const n = 10;
  const mean = randomArray(n, 40, -2, 2), logvar = randomArray(n, 41, -3, 2);
  test('equals 1/2 sum(var - log var - 1 + mean^2)', () => {
    let expected = 0;
    for (let i = 0; i < n; i++) expected += 0.5 * (Math.exp(logvar[i]) - logvar[i] - 1 + mean[i] ** 2);
    expect(ops.klForward(mean, logvar)).toBeCloseTo(expected, 4);
    expect(ops.klForward(new Float32Array(4), new Float32Array(4))).toBe(0);
  });
  test('backward (scaled) matches finite differences', () => {
    const scale = 0.7;
    const dmean = new Float32Array(n), dlogvar = new Float32Array(n);
    ops.klBackward(dmean, dlogvar, mean, logvar, scale);
    const f = () => scale * ops.klForward(mean, logvar);
    expectGradientsClose(mean, f, dmean, { h: 1e-3 });
    expectGradientsClose(logvar, f, dlogvar, { h: 1e-3 });
  });
  test('agrees with a Monte Carlo estimate of E_q[log q(z) - log p(z)]', () => {
    const m = new Float32Array([0.5, -1.2, 2.0]), lv = new Float32Array([-0.7, 0.4, -2.0]);
    const samples = 200000;
    const eps = randomNormal(samples * 3, 42);
    let sum = 0;
    for (let s = 0; s < samples; s++)
      for (let i = 0; i < 3; i++) {
        const e = eps[s * 3 + i];
        const z = m[i] + Math.exp(lv[i] / 2) * e;
        // log q(z) - log p(z), the 2*pi terms cancel
        sum += -0.5 * lv[i] - 0.5 * e * e + 0.5 * z * z;
      }
    const mc = sum / samples;
    expect(Math.abs(mc - ops.klForward(m, lv)) / ops.klForward(m, lv)).toBeLessThan(0.01);
  });
});

describe.each([
  ['bernoulli (BCE from logits)', 0],
  ['gaussian (SSE / 2)', 1],
] as const)('reconstruction loss %s', (_name, kind) => {
  const n = 20;
  const pred = randomArray(n, 50, -4, 4), target = randomArray(n, 51, 0, 1);
  test('backward matches finite differences', () => {
    const dpred = new Float32Array(n);
    ops.lossBackward(kind, dpred, pred, target, 0.5);
    expectGradientsClose(pred, () => 0.5 * ops.lossForward(kind, pred, target), dpred, { h: 1e-3 });
  });
  test('forward matches its definition', () => {
    let expected = 0;
    for (let i = 0; i < n; i++) {
      const l = pred[i], x = target[i];
      expected += kind === 0 ? -(x * Math.log(1 / (1 + Math.exp(-l))) + (1 - x) * Math.log(1 - 1 / (1 + Math.exp(-l)))) : 0.5 * (l - x) ** 2;
    }
    expect(ops.lossForward(kind, pred, target)).toBeCloseTo(expected, 3);
  });
});

test('BCE from logits is finite and exact for huge logits', () => {
  const logits = new Float32Array([1000, -1000, 80, -80]);
  const target = new Float32Array([1, 0, 0.5, 0.5]);
  const loss = ops.lossForward(0, logits, target);
  expect(Number.isFinite(loss)).toBe(true);
  // softplus(l) - x*l: 0 + 0 + (80 - 40) + (0 + 40)
  expect(loss).toBeCloseTo(80, 3);
});

describe('Adam', () => {
  test('one step equals the bias-corrected update', () => {
    const p = new Float32Array([1, -2, 3]), g = new Float32Array([0.5, -0.1, 0]), m = new Float32Array(3), v = new Float32Array(3);
    const hyper = { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    ops.adamUpdate(p, g, m, v, hyper, 1, 1);
    // step 1: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (0 where g is 0)
    expect(p[0]).toBeCloseTo(0.9, 6);
    expect(p[1]).toBeCloseTo(-1.9, 6);
    expect(p[2]).toBeCloseTo(3, 6);
    expect(m[0]).toBeCloseTo(0.05, 7);
    expect(v[0]).toBeCloseTo(0.00025, 7);
  });
  test('decoupled weight decay shrinks parameters by lr * decay', () => {
    const p = new Float32Array([2]), g = new Float32Array([0]), m = new Float32Array(1), v = new Float32Array(1);
    ops.adamUpdate(p, g, m, v, { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.5 }, 1, 1);
    expect(p[0]).toBeCloseTo(2 - 0.1 * 0.5 * 2, 6);
  });
  test('multi-threaded update equals single-threaded', () => {
    const n = 300001;
    const hyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };
    const run = (threads: number) => {
      const p = randomArray(n, 60), g = randomArray(n, 61), m = randomArray(n, 62), v = randomArray(n, 63, 0, 1);
      ops.adamUpdate(p, g, m, v, hyper, 7, threads);
      return p;
    };
    expect(sameBits(run(2), run(1))).toBe(true);
  });
});

describe.each([
  ['relu', 'bernoulli'],
  ['leaky_relu', 'gaussian'],
  ['tanh', 'bernoulli'],
  ['sigmoid', 'gaussian'],
  ['softplus', 'bernoulli'],
] as const)('whole model (%s, %s)', (activation, likelihood) => {
  test('gradient of the per-sample loss matches finite differences for every parameter', () => {
    const config = { inputDim: 6, latentDim: 2, encoderLayers: [5, 4], decoderLayers: [3], activation: 0, likelihood: 0, beta: 0.8, seed: 3, threads: 1 };
    config.activation = ['relu', 'leaky_relu', 'tanh', 'sigmoid', 'softplus'].indexOf(activation);
    config.likelihood = likelihood === 'bernoulli' ? 0 : 1;
    const model = new binding.NativeModel(config);
    const rows = 4;
    const x = randomArray(rows * 6, 70, 0, 1);
    const eps = randomNormal(rows * 2, 71);
    const params = new Float32Array(model.paramCount);
    model.copyParams(params);
    const grads = new Float32Array(model.paramCount);
    model.lossAndGradients(x, rows, eps, grads);
    const loss = () => {
      model.setParams(params);
      const [rec, kl] = model.lossAndGradients(x, rows, eps, null);
      return (rec + config.beta * kl) / rows;
    };
    expectGradientsClose(params, loss, grads, { h: 2e-3, atol: 1e-3, rtol: 2e-2 });
    // Non-finite noise is named, never turned into a NaN loss.
    const badEps = eps.slice();
    badEps[3] = NaN;
    // The binding names the value by fields; lib/ composes the message from them (toVaeError).
    const badValue = { fault: 'non-finite', argument: 'eps', row: 1, column: 1, value: NaN };
    expect(() => model.lossAndGradients(x, rows, badEps, null)).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', badValue }));
  });
});

describe('training keeps its packed weights current', () => {
  // A training step repacks the weights piece by piece as Adam updates them;
  // a model given the same parameters packs them whole. Both must compute the
  // same loss and gradients, bit for bit. Widths that are not multiples of the
  // 144-row pieces or 16-wide panels exercise the ragged pieces.
  test.each([
    ['relu', 0],
    ['tanh', 2],
  ] as const)('after Adam steps (%s)', async (_name, activation) => {
    const config = { inputDim: 200, latentDim: 3, encoderLayers: [150, 37], decoderLayers: [70], activation, likelihood: 0, beta: 1, seed: 9, threads: 2 };
    const trained = new binding.NativeModel(config);
    const rows = 96;
    const data = randomArray(rows * 200, 80, 0, 1);
    // Packs every weight (batches of 16 rows or more read packed copies) before
    // training steps of 8 rows, which read the weights in place and change them all.
    trained.lossAndGradients(randomArray(160 * 200, 83, 0, 1), 160, randomNormal(160 * 3, 84), null);
    trained.beginEpoch(rows, true);
    const stats = new Float64Array(4 * 3);
    const hyper = { learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    expect(await trained.trainAsync(data, rows, 8, 0, 3, hyper, stats)).toBe(3);

    const params = new Float32Array(trained.paramCount);
    trained.copyParams(params);
    const fresh = new binding.NativeModel(config);
    fresh.setParams(params);
    // 8 rows: the forward products read the weights in place, as in training;
    // 40 and 160 rows: they read packed copies, which training let go stale.
    for (const n of [8, 40, 160]) {
      const x = randomArray(n * 200, 82, 0, 1), eps = randomNormal(n * 3, 81);
      const gradsTrained = new Float32Array(trained.paramCount), gradsFresh = new Float32Array(trained.paramCount);
      const lossTrained = trained.lossAndGradients(x, n, eps, gradsTrained);
      const lossFresh = fresh.lossAndGradients(x, n, eps, gradsFresh);
      expect(Array.from(lossTrained)).toEqual(Array.from(lossFresh));
      expect(sameBits(gradsTrained, gradsFresh)).toBe(true);
    }
  });
});

describe('a cancelled training call', () => {
  // Each batch's noise is drawn during the previous step; a call cancelled
  // after drawing it must undo the draw, so that continuing gives exactly the
  // uninterrupted run.
  test('leaves the training RNG as if it had drawn batch by batch', async () => {
    const config = { inputDim: 64, latentDim: 2, encoderLayers: [16], decoderLayers: [16], activation: 0, likelihood: 0, beta: 1, seed: 5, threads: 1 };
    const rows = 4096, batch = 4, batches = rows / batch;
    const data = randomArray(rows * 64, 90, 0, 1);
    const hyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    const whole = new binding.NativeModel(config);
    whole.beginEpoch(rows, true);
    expect(await whole.trainAsync(data, rows, batch, 0, batches, hyper, new Float64Array(4 * batches))).toBe(batches);

    const a = new Float32Array(whole.paramCount);
    whole.copyParams(a);
    // Where the cancel lands is up to the scheduler: try a few delays; every
    // try must match, and at least one must have stopped mid-way.
    let stoppedMidway = false;
    for (const delayMs of [2, 5, 15, 40]) {
      const split = new binding.NativeModel(config);
      split.beginEpoch(rows, true);
      const running = split.trainAsync(data, rows, batch, 0, batches, hyper, new Float64Array(4 * batches));
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      split.cancel();
      const done = await running;
      if (done < batches) {
        expect(await split.trainAsync(data, rows, batch, done, batches - done, hyper, new Float64Array(4 * batches))).toBe(batches - done);
      }
      const b = new Float32Array(split.paramCount);
      split.copyParams(b);
      expect(sameBits(a, b)).toBe(true);
      stoppedMidway ||= done > 0 && done < batches;
    }
    expect(stoppedMidway).toBe(true);
  });
});

describe('a diverging training call', () => {
  // A step runs its forward pass and its Adam updates in one job; the updates
  // must wait for the whole batch's loss and skip a non-finite one, so that
  // the model is left exactly as after its last finite batch.
  test('keeps the parameters, moments and RNG of its last finite batch', async () => {
    const config = { inputDim: 8, latentDim: 2, encoderLayers: [16], decoderLayers: [16], activation: 0, likelihood: 1, beta: 1, seed: 3, threads: 2 };
    const rows = 512, batch = 32, batches = rows / batch;
    const data = new Float32Array(rows * 8).map((_, i) => (i * 7919) % 13);
    const hyper = { learningRate: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    const state = (model: InstanceType<typeof binding.NativeModel>) => {
      const params = new Float32Array(model.paramCount), m = new Float32Array(model.paramCount), v = new Float32Array(model.paramCount);
      const rng = new Uint32Array(12);
      model.copyParams(params);
      const step = model.copyOptimizer(m, v, rng);
      return { params: Buffer.from(params.buffer), m: Buffer.from(m.buffer), v: Buffer.from(v.buffer), rng: Array.from(rng), step };
    };
    // One call for the whole epoch, against one call per batch.
    const whole = new binding.NativeModel(config);
    whole.beginEpoch(rows, true);
    await expect(whole.trainAsync(data, rows, batch, 0, batches, hyper, new Float64Array(4 * batches))).rejects.toThrow(/non-finite at batch 2 /);
    const single = new binding.NativeModel(config);
    single.beginEpoch(rows, true);
    for (const b of [0, 1]) expect(await single.trainAsync(data, rows, batch, b, 1, hyper, new Float64Array(4))).toBe(1);
    const afterTwo = state(single);
    await expect(single.trainAsync(data, rows, batch, 2, 1, hyper, new Float64Array(4))).rejects.toThrow(/non-finite at batch 2 /);
    const [a, b] = [state(whole), state(single)];
    expect(a.step).toBe(2);
    expect(b.step).toBe(2);
    for (const key of ['params', 'm', 'v'] as const) {
      expect(a[key].equals(afterTwo[key])).toBe(true);
      expect(b[key].equals(afterTwo[key])).toBe(true);
    }
    // Both drew batch 2's noise, and no further.
    expect(a.rng).toEqual(b.rng);
  });

  test('an Adam hyper-parameter object with a missing or misspelt key is refused', async () => {
    const model = new binding.NativeModel({ inputDim: 4, latentDim: 2, encoderLayers: [4], decoderLayers: [4], activation: 0, likelihood: 0, beta: 1, seed: 1, threads: 1 });
    model.beginEpoch(8, false);
    const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 } as never;
    expect(() => model.trainAsync(new Float32Array(32), 8, 4, 0, 1, hyper, new Float64Array(4))).toThrow(/hyper\.learningRate/);
    const p = new Float32Array(4);
    expect(() => ops.adamUpdate(p, p.slice(), p.slice(), p.slice(), { ...(hyper as object), learningRate: 1, beta2: NaN } as never, 1, 1)).toThrow(/hyper\.beta2/);
  });

  test('trainAsync writes loss, reconstruction, KL and step seconds per batch, and refuses a shorter stats array', async () => {
    const model = new binding.NativeModel({ inputDim: 4, latentDim: 2, encoderLayers: [4], decoderLayers: [4], activation: 0, likelihood: 0, beta: 1, seed: 1, threads: 1 });
    const hyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    const data = randomArray(8 * 4, 3, 0, 1);
    model.beginEpoch(8, false);
    expect(() => model.trainAsync(data, 8, 4, 0, 2, hyper, new Float64Array(7))).toThrow(/at least 8 elements for stats/);
    const stats = new Float64Array(8);
    expect(await model.trainAsync(data, 8, 4, 0, 2, hyper, stats)).toBe(2);
    for (let b = 0; b < 2; b++) {
      const [loss, reconstruction, kl, seconds] = stats.subarray(4 * b, 4 * b + 4);
      expect(loss).toBeCloseTo(reconstruction + kl, 10);
      expect(kl).toBeGreaterThan(0);
      expect(seconds > 0 && seconds < 1).toBe(true);
    }
  });
});
