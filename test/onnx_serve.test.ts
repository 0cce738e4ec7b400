// First: loading onnxruntime-node switches this file's Float32Array (test/setup/realm.ts), and
// OnnxVAE would load it only when first used, after this file made its arrays.
import 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VaeError } from '../lib/errors';
import type { DenseWeights, VaeConfig, VaeWeights } from '../lib/model/types';
import { exportAll, referenceForward, writeOnnxModel } from '../lib/onnx';
import { NormalGenerator, normalDraws, OnnxVAE } from '../lib/serve';
import { makeConfig, randomWeights, scaledArray, uniforms } from './helpers/random';
import { resizableCopy, sameBits } from './helpers/buffers';
import { DIST, ensureDist } from './helpers/dist';
import { expectRejects } from './helpers/errors';

const TOLERANCE = 1e-5;




function expectClose(actual: Float32Array, expected: Float64Array | Float32Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  expect(worst).toBeLessThan(TOLERANCE);
}


const config: VaeConfig = makeConfig({ activation: 'softplus' });
const weights = randomWeights(config, 42);
const root = mkdtempSync(join(tmpdir(), 'vae-onnx-serve-'));
const dir = join(root, 'model');
const rows = 37;
const x = scaledArray(rows * config.inputDim, uniforms(7), 1, 0);
let vae: OnnxVAE;

beforeAll(async () => {
  await exportAll(dir, config, weights);
  vae = await OnnxVAE.open(dir, { intraOpNumThreads: 1, interOpNumThreads: 1 });
});
afterAll(async () => {
  await vae?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('OnnxVAE.open', () => {
  test('loads every graph and exposes the metadata', () => {
    expect(vae.graphs.sort()).toEqual(['decoder', 'encoder', 'encoder-mean', 'reconstruct', 'sample']);
    expect(vae.inputDim).toBe(13);
    expect(vae.latentDim).toBe(3);
    expect(vae.metadata).toMatchObject({ library: 'vae-node', likelihood: 'bernoulli', activation: 'softplus', encoderLayers: [7, 5] });
    expect(vae.metadata.inputScaling).toMatch(/\[0,1\]/);
  });

  test('a single file or a subset of graphs', async () => {
    const single = await OnnxVAE.open(join(dir, 'decoder.onnx'));
    expect(single.graphs).toEqual(['decoder']);
    await single.close();
    const subset = await OnnxVAE.open(dir, { graphs: ['encoder-mean'] });
    expect(subset.graphs).toEqual(['encoder-mean']);
    await subset.close();
  });

  test('missing paths, missing graphs and bad options', async () => {
    await expectRejects(OnnxVAE.open(join(root, 'nope')), 'ERR_IO', /nope/);
    await expectRejects(OnnxVAE.open(root), 'ERR_IO', /none of encoder\.onnx/);
    const partial = join(root, 'partial');
    await exportAll(partial, config, weights, { graphs: ['decoder'] });
    await expectRejects(OnnxVAE.open(partial, { graphs: ['decoder', 'sample'] }), 'ERR_IO', /no sample\.onnx/);
    await expectRejects(OnnxVAE.open(dir, { graphs: ['decode' as never] }), 'ERR_INVALID_ARGUMENT', /options\.graphs/);
    await expectRejects(OnnxVAE.open(dir, { intraOpNumThreads: -1 }), 'ERR_INVALID_ARGUMENT', /options\.intraOpNumThreads/);
    await expectRejects(OnnxVAE.open(dir, { batchSize: 0 }), 'ERR_INVALID_ARGUMENT', /options\.batchSize/);
  });

  test('graphs of different models are refused', async () => {
    const other = { ...config, latentDim: 4 };
    const mixed = join(root, 'mixed');
    await exportAll(mixed, config, weights, { graphs: ['encoder'] });
    await writeOnnxModel(join(root, 'other-decoder.onnx'), other, randomWeights(other, 1), { graph: 'decoder' });
    copyFileSync(join(root, 'other-decoder.onnx'), join(mixed, 'decoder.onnx'));
    await expectRejects(OnnxVAE.open(mixed), 'ERR_FILE_FORMAT', /different models \(latentDim 4 vs 3\)/);
    copyFileSync(join(dir, 'encoder.onnx'), join(mixed, 'decoder.onnx'));
    await expectRejects(OnnxVAE.open(mixed), 'ERR_FILE_FORMAT', /holds the encoder graph, expected decoder/);
  });
});

describe('inference matches the reference forward pass', () => {
  test('encode and encodeMean', async () => {
    const expected = referenceForward(config, weights, 'encoder', { x });
    const { mean, logVar } = await vae.encode(x);
    expectClose(mean, expected.mean!);
    expectClose(logVar, expected.logVar!);
    expectClose(await vae.encodeMean({ data: x, rows, cols: config.inputDim }), expected.mean!);
  });

  test('decode', async () => {
    const z = scaledArray(rows * config.latentDim, uniforms(3), 4);
    expectClose(await vae.decode(z), referenceForward(config, weights, 'decoder', { z }).xHat!);
  });

  test('reconstruct with given eps, or eps drawn from a seed', async () => {
    const eps = normalDraws(rows * config.latentDim, 5);
    const expected = referenceForward(config, weights, 'reconstruct', { x, eps }).xHat!;
    expectClose(await vae.reconstruct(x, { eps }), expected);
    expectClose(await vae.reconstruct(x, { seed: 5 }), expected);
  });

  test('sample(n, { seed }) decodes the seeded prior draws and is reproducible', async () => {
    const first = await vae.sample(20, { seed: 123 });
    expectClose(first, referenceForward(config, weights, 'sample', { eps: normalDraws(20 * config.latentDim, 123) }).xHat!);
    expect(await vae.sample(20, { seed: 123 })).toEqual(first);
    expect(await vae.sample(20, { seed: 124 })).not.toEqual(first);
    // Row i depends only on the seed and i, not on n.
    expect(await vae.sample(5, { seed: 123 })).toEqual(first.subarray(0, 5 * config.inputDim));
  });

  test('results do not depend on the batch size', async () => {
    const small = await OnnxVAE.open(dir, { batchSize: 8 });
    try {
      expect(await small.encode(x)).toEqual(await vae.encode(x));
      expect(await small.reconstruct(x, { seed: 9 })).toEqual(await vae.reconstruct(x, { seed: 9 }));
      expect(await small.sample(rows, { seed: 9 })).toEqual(await vae.sample(rows, { seed: 9 }));
    } finally {
      await small.close();
    }
  });

  test('fallbacks: encodeMean on the encoder graph, sample on the decoder graph', async () => {
    const partial = await OnnxVAE.open(dir, { graphs: ['encoder', 'decoder'] });
    try {
      expect(await partial.encodeMean(x)).toEqual(await vae.encodeMean(x));
      expect(await partial.sample(4, { seed: 1 })).toEqual(await vae.sample(4, { seed: 1 }));
      await expectRejects(partial.reconstruct(x), 'ERR_INVALID_ARGUMENT', /reconstruct\(\) needs the reconstruct graph/);
    } finally {
      await partial.close();
    }
  });
});

describe('input validation', () => {
  test('wrong lengths and widths', async () => {
    await expectRejects(vae.encode(new Float32Array(12)), 'ERR_INVALID_ARGUMENT', /multiple of 13 for x/);
    await expectRejects(vae.decode(new Float32Array(4)), 'ERR_INVALID_ARGUMENT', /multiple of 3 for z/);
    await expectRejects(vae.decode({ data: new Float32Array(8), rows: 2, cols: 4 }), 'ERR_INVALID_ARGUMENT', /z\.cols/);
    await expectRejects(vae.encode([1, 2, 3] as never), 'ERR_INVALID_ARGUMENT', /for x/);
    await expectRejects(vae.reconstruct(x, { eps: new Float32Array(3) }), 'ERR_INVALID_ARGUMENT', /37 rows of 3 values.*options\.eps/);
  });

  test('non-finite values', async () => {
    const bad = x.slice();
    bad[2 * 13 + 4] = NaN;
    await expectRejects(vae.encode(bad), 'ERR_NON_FINITE', /x contains a non-finite value \(NaN\) at row 2, column 4/);
    await expect(vae.encode(bad)).rejects.toMatchObject({ badValue: { fault: 'non-finite', argument: 'x', row: 2, column: 4 } });
    await expectRejects(vae.decode(new Float32Array([0, Infinity, 0])), 'ERR_NON_FINITE', /z contains a non-finite value \(Infinity\) at row 0, column 1/);
  });

  test('bad n, seed and option combinations', async () => {
    await expectRejects(vae.sample(0), 'ERR_INVALID_ARGUMENT', /for n/);
    await expectRejects(vae.sample(2.5), 'ERR_INVALID_ARGUMENT', /for n/);
    await expectRejects(vae.sample(2, { seed: -1 }), 'ERR_INVALID_ARGUMENT', /options\.seed/);
    await expectRejects(vae.reconstruct(x, { seed: 1, eps: normalDraws(rows * 3, 1) }), 'ERR_INVALID_ARGUMENT', /either eps or seed/);
  });

  test('calls after close()', async () => {
    const closing = await OnnxVAE.open(join(dir, 'sample.onnx'));
    await closing.close();
    await closing.close();
    await expectRejects(closing.sample(1, { seed: 1 }), 'ERR_INVALID_ARGUMENT', /after close\(\)/);
  });

  test('close() during a call stops it before its next batch with ERR_ABORTED, then releases', async () => {
    const closing = await OnnxVAE.open(join(dir, 'sample.onnx'), { batchSize: 1 });
    const running = closing.sample(64, { seed: 1 });
    const closed = closing.close();
    await expectRejects(running, 'ERR_ABORTED', /sample\(\) stopped: close\(\) was called/);
    await closed;
    await expectRejects(closing.sample(1, { seed: 1 }), 'ERR_INVALID_ARGUMENT', /after close\(\)/);
  });

  test('concurrent close() calls all settle once the sessions are released', async () => {
    const closing = await OnnxVAE.open(join(dir, 'sample.onnx'), { batchSize: 1 });
    const running = closing.sample(64, { seed: 1 }).catch((e: unknown) => e);
    const first = closing.close();
    expect(closing.close()).toBe(first);
    await first;
    expect(await running).toBeInstanceOf(VaeError);
  });

  test('unknown option keys are refused', async () => {
    await expectRejects(vae.sample(2, { sed: 1 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "sed"/);
    await expectRejects(OnnxVAE.open(dir, { threads: 2 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "threads"/);
  });

  test('n beyond 2^24 draws is refused', async () => {
    await expectRejects(vae.sample(2 ** 40), 'ERR_INVALID_ARGUMENT', /an integer in \[1, 16777216\] for n/);
  });
});

describe('onnxruntime-node, an optional dependency', () => {
  test('is loaded only by OnnxVAE.open, which says how to install it when it is missing', () => {
    ensureDist();
    // A Node process in which onnxruntime-node cannot be found, as after an offline install.
    const script = `
      const Module = require('module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === 'onnxruntime-node') throw Object.assign(new Error("Cannot find module 'onnxruntime-node'"), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
      const { VAE } = require(${JSON.stringify(DIST)});
      const { OnnxVAE } = require(${JSON.stringify(join(DIST, 'serve'))});
      new VAE({ inputDim: 8, latentDim: 2, encoderLayers: [4], threads: 1 }).encodeMean(new Float32Array(8));
      OnnxVAE.open(${JSON.stringify(dir)}).then(() => console.log('opened'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const err = JSON.parse(run.stdout) as { name: string; code: string; message: string };
    expect(err).toMatchObject({ name: 'VaeError', code: 'ERR_NATIVE' });
    expect(err.message).toMatch(/OnnxVAE needs onnxruntime-node.*ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node/);
  });
});

describe('input buffers that change between batches', () => {
  test('an input over a resizable ArrayBuffer is copied: shrinking it meanwhile changes nothing', async () => {
    const batched = await OnnxVAE.open(dir, { batchSize: 4, graphs: ['encoder-mean'] });
    const expected = await batched.encodeMean(x);
    const { buffer, array } = resizableCopy(x);
    const running = batched.encodeMean(array);
    buffer.resize(0);
    expect(await running).toEqual(expected);
    await batched.close();
  });

  test('an input transferred meanwhile rejects with ERR_INVALID_ARGUMENT', async () => {
    const batched = await OnnxVAE.open(dir, { batchSize: 4, graphs: ['decoder'] });
    const z = scaledArray(rows * config.latentDim, uniforms(9), 2, -1);
    const running = batched.decode(z);
    const zBuffer = z.buffer as ArrayBuffer;
    const keep = structuredClone(zBuffer, { transfer: [zBuffer] }); // kept alive: the memory stays valid
    await expectRejects(running, 'ERR_INVALID_ARGUMENT', /ArrayBuffer of z was transferred/);
    expect(keep.byteLength).toBe(rows * config.latentDim * 4);
    await batched.close();
  });
});

describe('NormalGenerator', () => {
  test('is deterministic and standard normal', () => {
    const draws = normalDraws(100_000, 2024);
    expect(sameBits(normalDraws(100_000, 2024), draws)).toBe(true);
    const mean = draws.reduce((s, v) => s + v, 0) / draws.length;
    const variance = draws.reduce((s, v) => s + (v - mean) ** 2, 0) / draws.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    expect(draws.every(Number.isFinite)).toBe(true);
  });

  test('uses all bits of the seed', () => {
    expect(new NormalGenerator(2 ** 32 + 1).next()).not.toBe(new NormalGenerator(1).next());
    expect(() => new NormalGenerator(1.5)).toThrow(/non-negative safe integer for seed/);
  });
});
