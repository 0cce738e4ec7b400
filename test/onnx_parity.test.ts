// Exported ONNX graphs run by onnxruntime-node give the native engine's outputs (same eps).
// First: loading onnxruntime-node switches this file's Float32Array (test/setup/realm.ts), and
// OnnxVAE would load it only when first used, after this file made its arrays.
import 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { loadEmbeddedFashionMnist } from '../lib/data/load';
import { sliceRows } from '../lib/data/matrix';
import { VAE } from '../lib';
import { OnnxVAE } from '../lib/serve';
import { randomArray, randomNormal } from './helpers/native';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vae-parity-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Largest |a - b| / max(1e-3, |b|) style error, with an absolute floor for values near zero. */
function maxRelativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

async function checkParity(vae: VAE, x: Float32Array, rows: number, name: string): Promise<void> {
  const out = join(dir, name);
  await vae.exportOnnxAll(out);
  const served = await OnnxVAE.open(out, { intraOpNumThreads: 1 });
  try {
    const d = vae.config.latentDim;
    const eps = randomNormal(rows * d, 17);
    const native = vae.encode(x);
    const onnx = await served.encode(x);
    expect(maxRelativeError(onnx.mean, native.mean)).toBeLessThan(1e-5);
    expect(maxRelativeError(onnx.logVar, native.logVar)).toBeLessThan(1e-5);
    expect(maxRelativeError(await served.encodeMean(x), vae.encodeMean(x))).toBeLessThan(1e-5);
    expect(maxRelativeError(await served.decode(native.mean), vae.decode(native.mean))).toBeLessThan(1e-5);
    expect(maxRelativeError(await served.reconstruct(x, { eps }), vae.reconstruct(x, { eps }))).toBeLessThan(1e-5);
    // sample: the same seed draws the same eps in both
    expect(maxRelativeError(await served.sample(rows, { seed: 3 }), vae.sample(rows, { seed: 3 }))).toBeLessThan(1e-5);
    expect(served.metadata.latentDim).toBe(d);
  } finally {
    await served.close();
  }
}

describe.each([
  ['relu', 'bernoulli', [16], [16]],
  ['tanh', 'gaussian', [12, 8], [9]],
  ['softplus', 'bernoulli', [], [10]],
  ['leaky_relu', 'gaussian', [7], []],
  ['sigmoid', 'bernoulli', [11], [11]],
] as const)('random model (%s, %s)', (activation, likelihood, encoderLayers, decoderLayers) => {
  test.each([1, 33])('batch %i: every graph matches the native engine', async (rows) => {
    const vae = new VAE({ inputDim: 20, latentDim: 3, encoderLayers: [...encoderLayers], decoderLayers: [...decoderLayers], activation, likelihood, seed: rows, threads: 1 });
    await checkParity(vae, randomArray(rows * 20, rows + 100, 0, 1), rows, `${activation}-${likelihood}-${rows}`);
  });
});

test('trained classic-shaped model on Fashion-MNIST: every graph matches at batch 1 and 256', async () => {
  const { x } = await loadEmbeddedFashionMnist();
  const vae = new VAE({ latentDim: 10, encoderLayers: [128], seed: 2, threads: 2 });
  await vae.fit(sliceRows(x, 0, 2000), { epochs: 1 });
  for (const rows of [1, 256]) await checkParity(vae, sliceRows(x, 5000, 5000 + rows).data, rows, `trained-${rows}`);
});
