// The cmake-js developer build produces the same addon as the node-gyp build.
import { spawnSync } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';

const root = join(__dirname, '..');
const cmakeBinary = join(root, 'build-cmake', 'Release', 'vae_native.node');

// Encodes a fixed input with the addon at VAE_NODE_BINARY (or the default) in a fresh process.
function encodeWith(binary: string | undefined): string {
  const script = `
    const { VAE } = require(${JSON.stringify(join(root, 'dist'))});
    const vae = new VAE({ inputDim: 9, latentDim: 2, encoderLayers: [5], seed: 11, threads: 1 });
    const x = Float32Array.from({ length: 27 }, (_, i) => (i % 7) / 7);
    process.stdout.write(JSON.stringify(Array.from(vae.encodeMean(x))));`;
  const env = { ...process.env };
  if (binary) env.VAE_NODE_BINARY = binary;
  else delete env.VAE_NODE_BINARY;
  const out = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  expect(out.stderr).toBe('');
  expect(out.status).toBe(0);
  return out.stdout;
}

test('the cmake-js build loads and computes what the node-gyp build computes', () => {
  if (!existsSync(cmakeBinary)) {
    if (process.env.CI) throw new Error(`${cmakeBinary} is missing: CI must run npm run build:cmake`);
    console.warn('skipped: no cmake-js build (npm run build:cmake)');
    return;
  }
  expect(encodeWith(cmakeBinary)).toBe(encodeWith(undefined));
});

test('a missing addon gives one error listing what was tried and how to rebuild', () => {
  const script = `
    process.env.VAE_NODE_BINARY = '/nonexistent/vae_native.node';
    const fs = require('fs');
    const realExists = fs.existsSync;
    fs.existsSync = (p) => (String(p).endsWith('.node') ? false : realExists(p));
    try { require(${JSON.stringify(join(root, 'dist', 'native', 'binding'))}).loadBinding(); }
    catch (e) { process.stdout.write(e.code + '\\n' + e.message); }`;
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(out.stdout).toMatch(/^ERR_NATIVE\n/);
  expect(out.stdout).toMatch(/\/nonexistent\/vae_native.node: not found/);
  expect(out.stdout).toMatch(/build\/Release\/vae_native.node: not found/);
  expect(out.stdout).toMatch(/npm rebuild vae-node/);
});

test('with VAE_DISABLE_AVX2=1 the portable kernels train the same model (to rounding)', () => {
  const script = `
    const { VAE } = require(${JSON.stringify(join(root, 'dist'))});
    const { loadBinding } = require(${JSON.stringify(join(root, 'dist', 'native', 'binding'))});
    const vae = new VAE({ inputDim: 30, latentDim: 3, encoderLayers: [16], seed: 4, threads: 2 });
    const x = Float32Array.from({ length: 30 * 200 }, (_, i) => ((i * 7919) % 101) / 100);
    vae.fit(x, { epochs: 2, batchSize: 32 }).then((h) => {
      process.stdout.write(JSON.stringify({ backend: loadBinding().cpuInfo().gemmBackend, loss: h[1].loss, mean: Array.from(vae.encodeMean(x.subarray(0, 300))) }));
    });`;
  const run = (disable: boolean) => {
    const env = { ...process.env };
    delete env.VAE_NODE_BINARY;
    if (disable) env.VAE_DISABLE_AVX2 = '1';
    else delete env.VAE_DISABLE_AVX2;
    const out = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    return JSON.parse(out.stdout) as { backend: string; loss: number; mean: number[] };
  };
  const portable = run(true), auto = run(false);
  expect(portable.backend).toBe('scalar');
  expect(Math.abs(portable.loss - auto.loss)).toBeLessThan(1e-3 * Math.abs(auto.loss));
  const worst = Math.max(...portable.mean.map((v, i) => Math.abs(v - auto.mean[i])));
  expect(worst).toBeLessThan(1e-3);
});
