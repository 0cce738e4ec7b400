// The cmake-js developer build produces the same addon as the node-gyp build.
import { spawnSync } from 'child_process';
import { copyFileSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { binding } from './helpers/native';

const root = join(__dirname, '..');
const distDir = JSON.stringify(join(root, 'dist'));
const bindingModule = JSON.stringify(join(root, 'dist', 'native', 'binding'));
const cmakeBinary = join(root, 'build-cmake', 'Release', 'vae_native.node');
const debugBinary = join(root, 'build-cmake-debug', 'Debug', 'vae_native.node');
const phasesBinary = join(root, 'build-phases', 'Release', 'vae_native.node');

/**
 * Runs `script` in a fresh node process with the addon at `binary` (VAE_NODE_BINARY; the
 * default build when undefined); `env` entries set to undefined are removed.
 */
function runNode(script: string, options: { binary?: string; env?: Record<string, string | undefined>; cwd?: string } = {}) {
  const env: Record<string, string | undefined> = { ...process.env, VAE_NODE_BINARY: options.binary, ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return spawnSync(process.execPath, ['-e', script], { env, cwd: options.cwd, encoding: 'utf8' });
}

/** True when the developer build exists; in CI its absence is an error (CI must build it). */
function haveBuild(binary: string, npmScript: string): boolean {
  if (existsSync(binary)) return true;
  if (process.env.CI) throw new Error(`${binary} is missing: CI must run npm run ${npmScript}`);
  console.warn(`skipped: no ${npmScript} build (npm run ${npmScript})`);
  return false;
}

// Trains a small model for 2 epochs of 200 rows at batch 32 (14 steps); `report(h)` prints the result.
const trainScript = (report: string) => `
  const { VAE } = require(${distDir});
  const { loadBinding } = require(${bindingModule});
  const vae = new VAE({ inputDim: 30, latentDim: 3, encoderLayers: [16], seed: 4, threads: 2 });
  const x = Float32Array.from({ length: 30 * 200 }, (_, i) => ((i * 7919) % 101) / 100);
  vae.fit(x, { epochs: 2, batchSize: 32 }).then((h) => process.stdout.write(${report}));`;

// Encodes a fixed input with the addon at `binary` (or the default) in a fresh process.
function encodeWith(binary: string | undefined): string {
  const script = `
    const { VAE } = require(${distDir});
    const vae = new VAE({ inputDim: 9, latentDim: 2, encoderLayers: [5], seed: 11, threads: 1 });
    const x = Float32Array.from({ length: 27 }, (_, i) => (i % 7) / 7);
    process.stdout.write(JSON.stringify(Array.from(vae.encodeMean(x))));`;
  const out = runNode(script, { binary });
  expect(out.stderr).toBe('');
  expect(out.status).toBe(0);
  return out.stdout;
}

test('the cmake-js build loads and computes what the node-gyp build computes', () => {
  if (!haveBuild(cmakeBinary, 'build:cmake')) return;
  expect(encodeWith(cmakeBinary)).toBe(encodeWith(undefined));
});

test('the -O0 debug build (as used for sanitizers) computes what the release build does', () => {
  if (!haveBuild(debugBinary, 'build:cmake:debug')) return;
  // Without optimisation nothing is inlined unless forced: the SIMD kernels must still be
  // right (they once exchanged AVX2 vectors with default-target code there and computed garbage).
  const script = `
    const { ops, cpuInfo } = require(${bindingModule}).loadBinding();
    const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) / 2);
    let worst = 0;
    for (const [ta, tb, M, N, K] of [[0, 1, 5, 20, 400], [0, 0, 37, 40, 30], [1, 0, 13, 17, 64]]) {
      const A = rnd(M * K, 1), B = rnd(K * N, 2), bias = rnd(N, 3), mask = rnd(M * N, 4);
      const run = (backend) => { const C = new Float32Array(M * N); ops.sgemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, C, N, 2, backend, bias, 1, mask); return C; };
      const want = run(3);
      for (const backend of [1, ...(cpuInfo().avx2Fma ? [2] : []), ...(cpuInfo().avx512f ? [4] : [])]) worst = Math.max(worst, ...run(backend).map((v, i) => Math.abs(v - want[i])));
    }
    process.stdout.write(String(worst));`;
  const out = runNode(script, { binary: debugBinary });
  expect(out.stderr).toBe('');
  expect(Number(out.stdout)).toBeLessThan(1e-4);
  const release = JSON.parse(encodeWith(undefined)) as number[], debug = JSON.parse(encodeWith(debugBinary)) as number[];
  expect(Math.max(...debug.map((v, i) => Math.abs(v - release[i])))).toBeLessThan(1e-5);
});

test('the phase-timing build trains to the same bits and prints where a step went at exit', () => {
  if (!haveBuild(phasesBinary, 'build:cmake:phases')) return;
  const script = trainScript('String(h[1].loss)');
  const timed = runNode(script, { binary: phasesBinary }), plain = runNode(script);
  expect(timed.status).toBe(0);
  expect(timed.stdout).toBe(plain.stdout);
  expect(plain.stderr).toBe('');
  // 2 epochs of 200 rows at batch 32: 14 steps.
  expect(timed.stderr).toContain('vae-node phase times, microseconds per training step (14 steps)');
  for (const phase of ['forward products', 'input gradients', 'weight gradients', 'adam', 'repack W^T', 'waiting', 'step (wall)']) {
    expect(timed.stderr).toMatch(new RegExp(`\\n  ${phase.replace(/[()^]/g, '\\$&')} +\\d+\\.\\d`));
  }
});

test('on Linux every build is linked never to be unloaded', () => {
  // Node dlcloses an addon when the last worker thread that loaded it exits; the shared thread
  // pool's threads then ran unmapped code (SIGSEGV in about 1 run in 20 of
  // test/fixtures/terminate_workers.js). -z nodelete keeps the addon, and its pool, for good.
  if (process.platform !== 'linux') return;
  const builds = [join(root, 'build', 'Release', 'vae_native.node'), cmakeBinary, debugBinary, phasesBinary].filter((b) => existsSync(b));
  for (const binary of builds) {
    const out = spawnSync('readelf', ['--dynamic', binary], { encoding: 'utf8' });
    if (out.error) throw new Error(`readelf (binutils) is needed to check ${binary}: ${out.error.message}`);
    expect({ binary, nodelete: /FLAGS_1\)\s+Flags:.*\bNODELETE\b/.test(out.stdout) }).toEqual({ binary, nodelete: true });
  }
});

test('a missing addon gives one error listing what was tried and how to rebuild', () => {
  const script = `
    const fs = require('fs');
    const realExists = fs.existsSync;
    fs.existsSync = (p) => (String(p).endsWith('.node') ? false : realExists(p));
    try { require(${bindingModule}).loadBinding(); }
    catch (e) { process.stdout.write(e.code + '\\n' + e.message); }`;
  const out = runNode(script);
  expect(out.stdout).toMatch(/^ERR_NATIVE\n/);
  expect(out.stdout).toMatch(/build\/Release\/vae_native.node: not found/);
  expect(out.stdout).toMatch(/build-cmake\/Release\/vae_native.node: not found/);
  expect(out.stdout).toMatch(/npm rebuild vae-node/);
});

describe('VAE_NODE_BINARY', () => {
  // Loads the binding in a fresh process from `cwd` and reports the file it loaded, or the error.
  const load = (binary: string, cwd: string) => {
    const script = `
      try {
        require(${bindingModule}).loadBinding();
        const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
        process.stdout.write('loaded ' + loaded.join(','));
      } catch (e) { process.stdout.write(e.code + '\\n' + e.message); }`;
    return runNode(script, { binary, cwd }).stdout;
  };

  test('a relative path is taken from the working directory', () => {
    // A copy elsewhere, so that loading the default build instead would show.
    const dir = mkdtempSync(join(tmpdir(), 'vae-binary-'));
    try {
      copyFileSync(join(root, 'build', 'Release', 'vae_native.node'), join(dir, 'copy.node'));
      expect(load('copy.node', dir)).toBe(`loaded ${join(realpathSync(dir), 'copy.node')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file that does not load is an error, not a silent fallback to the default build', () => {
    // The default build exists (the suite runs on it), yet it must not be used instead.
    const out = load('no-such-build/vae_native.node', root);
    expect(out).toMatch(/^ERR_NATIVE\n/);
    expect(out).toContain(`VAE_NODE_BINARY names:\n  ${join(root, 'no-such-build', 'vae_native.node')}: not found`);
    expect(out).not.toContain(join('build', 'Release'));
  });
});

// Trains the trainScript model in a fresh process, with `variable` set to 1 or unset, and
// returns what it reports (the gemm backend's name, losses, encodings).
function trainWith(variable: string, disable: boolean, report: string): Record<string, unknown> & { backend: string } {
  const out = runNode(trainScript(`JSON.stringify({ backend: loadBinding().cpuInfo().gemmBackend, ${report} })`), {
    env: { [variable]: disable ? '1' : undefined },
  });
  expect(out.stderr).toBe('');
  return JSON.parse(out.stdout);
}

test('with VAE_DISABLE_AVX512=1 the AVX2 micro-kernel trains the same model bit for bit', () => {
  const report = 'loss: h.map((e) => e.loss), mean: Array.from(vae.encodeMean(x)), out: Array.from(vae.decode(vae.encodeMean(x.subarray(0, 300))))';
  const avx2 = trainWith('VAE_DISABLE_AVX512', true, report), auto = trainWith('VAE_DISABLE_AVX512', false, report);
  if (binding.cpuInfo().avx2Fma) expect(avx2.backend).toBe('avx2-fma');
  if (binding.cpuInfo().avx512f) expect(auto.backend).toBe('avx512f');
  expect({ ...auto, backend: '' }).toEqual({ ...avx2, backend: '' });
});

test('with VAE_DISABLE_AVX2=1 the portable kernels train the same model (to rounding)', () => {
  const report = 'loss: h[1].loss, mean: Array.from(vae.encodeMean(x.subarray(0, 300)))';
  const run = (disable: boolean) => trainWith('VAE_DISABLE_AVX2', disable, report) as { backend: string; loss: number; mean: number[] };
  const portable = run(true), auto = run(false);
  expect(portable.backend).toBe('scalar');
  expect(Math.abs(portable.loss - auto.loss)).toBeLessThan(1e-3 * Math.abs(auto.loss));
  const worst = Math.max(...portable.mean.map((v, i) => Math.abs(v - auto.mean[i])));
  expect(worst).toBeLessThan(1e-3);
});
