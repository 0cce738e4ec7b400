/**
 * End-to-end tests of the `vae` command: each test spawns the compiled CLI (`node dist/cli/main.js`)
 * in a temp directory, exactly as users run it (beforeAll compiles dist/ if it is stale).
 */
import { spawn } from 'child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createInterface } from 'readline';
import { PNG } from 'pngjs';
import { VAE } from '../lib/model/vae';
import { loadEmbeddedFashionMnist, readCsv, readNpyMatrix, writeCsv, writeNpy, Matrix } from '../lib/data';
import { imageGrid, reconstructionGrid } from '../lib/image';
import { DIST, ensureDist } from './helpers/dist';

const MAIN = path.join(DIST, 'cli', 'main.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (1-2 threads keep tests fair to the 2-core machine). */
function vae(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function pngSize(file: string): { width: number; height: number } {
  const png = PNG.sync.read(readFileSync(file));
  return { width: png.width, height: png.height };
}

function bufferPngSize(buf: Buffer): { width: number; height: number } {
  const png = PNG.sync.read(buf);
  return { width: png.width, height: png.height };
}

/** The CLI's error contract: non-zero exit, exactly one stderr line `vae: ...`, no stack trace. */
function expectOneLineError(r: Run): void {
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^vae: \S/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

function expectClose(actual: Float32Array, expected: Float32Array, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(tol);
}

let tmp: string;
let model: string;
let firstRows: Matrix; // 300 embedded images, the encode inputs

beforeAll(async () => {
  ensureDist(MAIN);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'vae-cli-'));
  const { x } = await loadEmbeddedFashionMnist();
  firstRows = { data: x.data.slice(0, 300 * 784), rows: 300, cols: 784 };
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('vae train', () => {
  test('one epoch on a subset writes the model, history and decodable PNGs', async () => {
    const out = path.join(tmp, 'run');
    const r = await vae(['train', '--limit', '500', '--epochs', '1', '--latent', '2', '--hidden', '64', '--seed', '7', '--threads', '2', '--out', out], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^epoch 1\/1 +loss \d/m); // not a TTY: one plain line per epoch
    model = path.join(out, 'model.vae');
    expect(existsSync(model)).toBe(true);
    const doc = JSON.parse(readFileSync(path.join(out, 'history.json'), 'utf8'));
    expect(doc.history).toHaveLength(1);
    expect(Number.isFinite(doc.history[0].loss)).toBe(true);
    expect(Number.isFinite(doc.history[0].valLoss)).toBe(true);
    expect(doc.interrupted).toBe(false);
    expect(doc.config.latentDim).toBe(2);
    for (const name of ['reconstructions', 'samples', 'curves', 'manifold', 'latent-scatter']) {
      const { width, height } = pngSize(path.join(out, `${name}.png`));
      expect(width).toBeGreaterThan(50);
      expect(height).toBeGreaterThan(50);
    }
    // 20 x 20 tiles of 28 x 28 with no padding.
    expect(pngSize(path.join(out, 'manifold.png'))).toEqual({ width: 560, height: 560 });
  });

  test('Ctrl-C (SIGINT) saves the completed state and exits 130', async () => {
    const out = path.join(tmp, 'interrupted');
    const child = spawn(process.execPath, [MAIN, 'train', '--limit', '4000', '--epochs', '500', '--hidden', '64', '--out', out], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (/^epoch +1\//.test(line)) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(130);
    const saved = await VAE.load(path.join(out, 'model.vae'));
    expect(saved.history.length).toBeGreaterThanOrEqual(1);
    expect(saved.history.length).toBeLessThan(500);
    const doc = JSON.parse(readFileSync(path.join(out, 'history.json'), 'utf8'));
    expect(doc.interrupted).toBe(true);
    expect(doc.history).toHaveLength(saved.history.length);
  });

  test('a reader that closes the pipe early (| head -2) does not stop the training or the save', async () => {
    const out = path.join(tmp, 'piped');
    const child = spawn(process.execPath, [MAIN, 'train', '--limit', '500', '--epochs', '3', '--hidden', '64', '--out', out], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy()); // the reader goes away after its first chunk
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect((await VAE.load(path.join(out, 'model.vae'))).history).toHaveLength(3);
  });
});

describe('commands on a trained model', () => {
  test('eval prints finite numbers, as a table and as JSON', async () => {
    const table = await vae(['eval', model, '--limit', '200'], tmp);
    expect(table.code).toBe(0);
    const value = (label: string) => Number(new RegExp(`^${label}\\s+(\\S+)`, 'm').exec(table.stdout)?.[1]);
    for (const label of ['-ELBO', 'reconstruction', 'KL']) expect(Number.isFinite(value(label))).toBe(true);

    const json = await vae(['eval', model, '--limit', '200', '--json'], tmp);
    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout);
    expect(r.rows).toBe(200);
    expect(r.loss).toBeCloseTo(r.reconstruction + r.kl, 6);
    for (const k of ['loss', 'reconstruction', 'kl']) expect(Number.isFinite(r[k])).toBe(true);
  });

  test('encode streams .npy and .csv in chunks and matches encodeMean in-process', async () => {
    const npyIn = path.join(tmp, 'in.npy');
    const csvIn = path.join(tmp, 'in.csv');
    await writeNpy(npyIn, firstRows);
    await writeCsv(csvIn, firstRows);
    const local = await VAE.load(model);
    const mean = local.encodeMean(firstRows);
    const { mean: m2, logVar } = local.encode(firstRows);
    expectClose(m2, mean, 0);

    // A batch size that does not divide 300 exercises the short last chunk.
    const npyOut = path.join(tmp, 'z.npy');
    const a = await vae(['encode', model, '--in', npyIn, '--out', npyOut, '--batch-size', '128'], tmp);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/300 rows .* rows\/s/);
    const z = await readNpyMatrix(npyOut);
    expect([z.rows, z.cols]).toEqual([300, 2]);
    expectClose(z.data, mean, 1e-5);

    const csvOut = path.join(tmp, 'z.csv');
    const b = await vae(['encode', model, '--in', csvIn, '--out', csvOut, '--batch-size', '64', '--logvar'], tmp);
    expect(b.code).toBe(0);
    const { matrix, header } = await readCsv(csvOut);
    expect(header).toEqual(['mean_0', 'mean_1', 'logvar_0', 'logvar_1']);
    expect([matrix.rows, matrix.cols]).toEqual([300, 4]);
    // Layout: [mean..., logvar...] per row.
    const gotMean = new Float32Array(600), gotLogVar = new Float32Array(600);
    for (let i = 0; i < 300; i++) {
      gotMean.set(matrix.data.subarray(4 * i, 4 * i + 2), 2 * i);
      gotLogVar.set(matrix.data.subarray(4 * i + 2, 4 * i + 4), 2 * i);
    }
    expectClose(gotMean, mean, 1e-5);
    expectClose(gotLogVar, logVar, 1e-5);
  });

  test('encode --out - writes the CSV to stdout, and stops when the reader closes it', async () => {
    const npyIn = path.join(tmp, 'in-stdout.npy');
    await writeNpy(npyIn, firstRows);
    const fileOut = path.join(tmp, 'z-file.csv');
    expect((await vae(['encode', model, '--in', npyIn, '--out', fileOut, '--batch-size', '64'], tmp)).code).toBe(0);
    const r = await vae(['encode', model, '--in', npyIn, '--out', '-', '--batch-size', '64'], tmp);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(fileOut, 'utf8'));
    expect(r.stderr).toMatch(/^encoded 300 rows -> stdout \(2 columns\)/); // the report moves to stderr

    // 3000 rows in chunks of 8: the reader leaves after its first chunk, long before the end.
    const many = path.join(tmp, 'in-many.npy');
    const rows = 3000, data = new Float32Array(rows * 784);
    for (let i = 0; i < rows; i++) data.set(firstRows.data.subarray((i % 300) * 784, (i % 300 + 1) * 784), i * 784);
    await writeNpy(many, { data, rows, cols: 784 });
    const child = spawn(process.execPath, [MAIN, 'encode', model, '--in', many, '--out', '-', '--batch-size', '8'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(0);
    const encoded = Number(/^encoded (\S+) rows -> stdout, until its reader closed it/.exec(stderr)?.[1].replace(/,/g, ''));
    expect(encoded).toBeGreaterThan(0);
    expect(encoded).toBeLessThan(rows);
  });

  test('encode refuses input that is not .npy, CSV or IDX instead of parsing it as CSV', async () => {
    const png = path.join(tmp, 'picture.dat');
    writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]));
    const r = await vae(['encode', model, '--in', png, '--out', path.join(tmp, 'picture-z.csv')], tmp);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/picture\.dat": unrecognised data file/);
  });

  test('sample and reconstruct write PNGs of the expected size', async () => {
    const samples = path.join(tmp, 'samples.png');
    const s = await vae(['sample', model, '--n', '10', '--seed', '3', '--out', samples], tmp);
    expect(s.code).toBe(0);
    // 10 tiles -> 4 x 3 grid of 28 px tiles zoomed x2 (56 px) with 2 px padding zoomed x2 (4 px).
    expect(pngSize(samples)).toEqual({ width: 4 * 60 + 4, height: 3 * 60 + 4 });
    expect(pngSize(samples)).toEqual(bufferPngSize(imageGrid(new Float32Array(10 * 784), 10, 28, 28, { scale: 2 })));

    const recon = path.join(tmp, 'recon.png');
    const r = await vae(['reconstruct', model, '--n', '12', '--out', recon], tmp);
    expect(r.code).toBe(0);
    const blank = new Float32Array(12 * 784);
    expect(pngSize(recon)).toEqual(bufferPngSize(reconstructionGrid(blank, blank, 12, 28, 28, { scale: 2 })));

    // A PNG is not written under another name.
    for (const command of ['sample', 'reconstruct']) {
      const wrong = await vae([command, model, '--out', 'grid.jpg'], tmp);
      expectOneLineError(wrong);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/'grid\.jpg' is invalid\. Expected a file name ending in \.png/);
      expect(existsSync(path.join(tmp, 'grid.jpg'))).toBe(false);
    }
  });

  test('export writes the 5 ONNX graphs', async () => {
    const dir = path.join(tmp, 'onnx');
    const r = await vae(['export', model, '--onnx', dir], tmp);
    expect(r.code).toBe(0);
    const files = readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
    expect(files).toEqual(['decoder.onnx', 'encoder-mean.onnx', 'encoder.onnx', 'reconstruct.onnx', 'sample.onnx']);
    for (const f of files) expect(statSync(path.join(dir, f)).size).toBeGreaterThan(1000);
  });

  test('info --json parses and summarises the training', async () => {
    const r = await vae(['info', model, '--json'], tmp);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.config).toMatchObject({ inputDim: 784, latentDim: 2, encoderLayers: [64], seed: 7 });
    expect(info.parameterCount).toBe((await VAE.load(model)).parameterCount);
    expect(info.training.epochs).toBe(1);
    expect(Number.isFinite(info.training.lastLoss)).toBe(true);
    expect(info.training.totalSeconds).toBeGreaterThan(0);
  });
});

describe('errors: one line `vae: ...`, non-zero exit, no stack trace', () => {
  test('missing model file', async () => {
    const r = await vae(['info', path.join(tmp, 'nope.vae')], tmp);
    expectOneLineError(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.vae');
  });

  test('bad numeric options name the option and exit 2', async () => {
    const epochs = await vae(['train', '--epochs', 'abc'], tmp);
    expectOneLineError(epochs);
    expect(epochs.code).toBe(2);
    expect(epochs.stderr).toContain('--epochs');
    const hidden = await vae(['train', '--hidden', '400,x'], tmp);
    expectOneLineError(hidden);
    expect(hidden.code).toBe(2);
    expect(hidden.stderr).toContain('--hidden');
  });

  test('a NaN in the input file is named by its row in the file, not in its chunk', async () => {
    const data = new Float32Array(5 * 784).fill(0.5);
    data[3 * 784 + 5] = NaN;
    const nan = path.join(tmp, 'nan.npy');
    await writeNpy(nan, { data, rows: 5, cols: 784 });
    const out = path.join(tmp, 'nan-z.npy');
    const r = await vae(['encode', model, '--in', nan, '--out', out, '--batch-size', '2'], tmp);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/nan\.npy" contains a non-finite value \(NaN\) at data row 3, column 5 \(counting from 0\)/);
    expect(existsSync(out)).toBe(false);
  });

  test('a bad value is named by its file and data row in train and eval, held-out rows included', async () => {
    // 50 rows under a header: train holds out the last 5 (rows 45..49), so row 47 is validation data.
    const lines = ['a,b,c,d', ...Array.from({ length: 50 }, (_, i) => [0.1, 0.2, 0.3, (i % 10) / 10].join(','))];
    lines[1 + 47] = '0.1,0.2,7,0.3';
    const file = path.join(tmp, 'seven.csv');
    writeFileSync(file, lines.join('\n') + '\n');
    const outside = /seven\.csv" but received 7 at data row 47, column 2 \(counting from 0\); scale it/;
    const train = await vae(['train', '--data', file, '--scale', '1', '--epochs', '1', '--hidden', '8', '--latent', '2', '--out', path.join(tmp, 'seven')], tmp);
    expectOneLineError(train);
    expect(train.stderr).toMatch(outside);
    const small = path.join(tmp, 'seven', 'small.vae');
    await new VAE({ inputDim: 4, latentDim: 2, encoderLayers: [8], seed: 1, threads: 1 }).save(small);
    const evaluated = await vae(['eval', small, '--data', file, '--scale', '1'], tmp);
    expectOneLineError(evaluated);
    expect(evaluated.stderr).toMatch(outside);
  });

  test('ragged CSV input', async () => {
    const ragged = path.join(tmp, 'ragged.csv');
    writeFileSync(ragged, '1,2,3\n4,5\n');
    const out = path.join(tmp, 'ragged-z.npy');
    const r = await vae(['encode', model, '--in', ragged, '--out', out], tmp);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/line 2/);
    expect(existsSync(out)).toBe(false);
  });
});
