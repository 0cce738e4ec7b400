// Misuse of the public API that used to crash, corrupt or mislead: buffers that change under an
// async call, misspelt options, bad optimizer state, the caller's own callback errors, the
// frozen config, tampered model files and results too large to allocate.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { VAE, VaeError } from '../lib';
import { encodeModelFile, decodeModelFile } from '../lib/model/file_format';
import { Growable, Resizable, resizableCopy, sameBits } from './helpers/buffers';
import { expectRejects, expectVaeError } from './helpers/errors';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vae-misuse-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));


const tiny = () => new VAE({ inputDim: 8, latentDim: 2, encoderLayers: [6], seed: 3, threads: 1 });
const rowsOf = (rows: number, fill = 0.5) => new Float32Array(rows * 8).fill(fill);

describe('buffers that change while an async call runs', () => {
  const resizable = (rows: number) => {
    const { buffer, array } = resizableCopy(rowsOf(rows, 0.25));
    return { buffer, x: array };
  };

  test('an input over a resizable ArrayBuffer is copied: shrinking it meanwhile changes nothing', async () => {
    const vae = tiny();
    const expected = vae.encode(rowsOf(4096, 0.25));
    const { buffer, x } = resizable(4096);
    const pending = Promise.all([vae.encodeAsync(x), vae.decodeAsync(x.subarray(0, 2 * 100)), vae.evaluateAsync(x), vae.reconstructAsync(x)]);
    buffer.resize(0); // unmaps the memory the call would otherwise still read
    const [encoded] = await pending;
    expect(sameBits(encoded.mean, expected.mean)).toBe(true);
  });

  test('fit copies resizable training and validation data', async () => {
    const vae = tiny();
    const train = resizable(512), validation = resizable(64);
    const fitting = vae.fit(train.x, { epochs: 2, batchSize: 32, validationData: validation.x });
    train.buffer.resize(0);
    validation.buffer.resize(0);
    const history = await fitting;
    expect(history).toHaveLength(2);
    expect(history.every((e) => Number.isFinite(e.loss) && Number.isFinite(e.valLoss))).toBe(true);
  });

  test('an output over a resizable ArrayBuffer is refused', async () => {
    const out = new Float32Array(new Resizable(16 * 2 * 4, { maxByteLength: 1 << 16 }));
    await expectRejects(tiny().encodeMeanAsync(rowsOf(16), out), 'ERR_INVALID_ARGUMENT', /fixed-length ArrayBuffer .* for out/);
  });

  test('a growable SharedArrayBuffer (it only grows, in place) is used as it is', async () => {
    const shared = new Growable(16 * 8 * 4, { maxByteLength: 1 << 16 });
    const x = new Float32Array(shared, 0, 16 * 8).fill(0.5);
    const out = new Float32Array(new SharedArrayBuffer(16 * 2 * 4));
    expect(await tiny().encodeMeanAsync(x, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(tiny().encodeMean(rowsOf(16))));
  });

  test('an input whose buffer is transferred during the call rejects instead of returning its results', async () => {
    const vae = tiny();
    const x = rowsOf(1 << 15);
    const pending = vae.encodeMeanAsync(x);
    const keep = structuredClone(x.buffer, { transfer: [x.buffer] }); // kept alive: the memory stays valid
    await expectRejects(pending, 'ERR_INVALID_ARGUMENT', /ArrayBuffer of x was transferred/);
    expect(keep.byteLength).toBe((1 << 15) * 8 * 4);
  });
});

describe('options objects', () => {
  test('a misspelt option is an error, not a silent default', async () => {
    const vae = tiny();
    await expectRejects(vae.fit(rowsOf(64), { epoch: 50 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "epoch" in options; expected one of epochs/);
    expectVaeError(() => vae.evaluate(rowsOf(4), { seeds: 1 } as never), 'ERR_INVALID_ARGUMENT', /"seeds"/);
    expectVaeError(() => vae.sample(2, { sed: 1 } as never), 'ERR_INVALID_ARGUMENT', /"sed"/);
    expectVaeError(() => vae.reconstruct(rowsOf(2), { noise: rowsOf(2) } as never), 'ERR_INVALID_ARGUMENT', /"noise"/);
    await expectRejects(vae.logLikelihoodAsync(rowsOf(2), { sample: 5 } as never), 'ERR_INVALID_ARGUMENT', /"sample"/);
    expectVaeError(() => VAE.loadSync(join(dir, 'any.vae'), { thread: 2 } as never), 'ERR_INVALID_ARGUMENT', /"thread"/);
  });

  test('fit(x, null) and other non-objects are typed errors naming options', async () => {
    for (const options of [null, 3, 'fast']) {
      await expectRejects(tiny().fit(rowsOf(64), options as never), 'ERR_INVALID_ARGUMENT', /for options but received/);
    }
  });
});

describe('optimizer state', () => {
  const state = (vae: VAE) => vae.getOptimizerState();

  test('non-finite or negative moments, a bad step and bad shapes are refused, naming the field', () => {
    const vae = tiny();
    const negative = state(vae);
    negative.v[5] = -1;
    expectVaeError(() => vae.setOptimizerState(negative), 'ERR_INVALID_ARGUMENT', /state\.v but received -1 at index 5/);
    const nan = state(vae);
    nan.m[2] = NaN;
    expectVaeError(() => vae.setOptimizerState(nan), 'ERR_INVALID_ARGUMENT', /state\.m but received NaN at index 2/);
    expectVaeError(() => vae.setOptimizerState({ ...state(vae), step: 2 ** 53 }), 'ERR_INVALID_ARGUMENT', /state\.step/);
    expectVaeError(() => vae.setOptimizerState({ ...state(vae), v: new Float32Array(3) }), 'ERR_INVALID_ARGUMENT', /state\.v/);
    expectVaeError(() => vae.setOptimizerState(null as never), 'ERR_INVALID_ARGUMENT', /for state but received null/);
  });

  test('a generator state getOptimizerState cannot have written is refused (all zero would hang the shuffle)', () => {
    const vae = tiny();
    const zero = state(vae);
    zero.rngState.subarray(0, 8).fill(0);
    expectVaeError(() => vae.setOptimizerState(zero), 'ERR_INVALID_ARGUMENT', /state\.rngState .*all-zero generator state/);
    const nanSpare = state(vae);
    nanSpare.rngState[8] = 1;
    nanSpare.rngState[10] = 0x7fc00000; // NaN's bits
    expectVaeError(() => vae.setOptimizerState(nanSpare), 'ERR_INVALID_ARGUMENT', /non-finite spare draw/);
    const flag = state(vae);
    flag.rngState[8] = 7;
    expectVaeError(() => vae.setOptimizerState(flag), 'ERR_INVALID_ARGUMENT', /spare flag/);
  });

  test('a refused state leaves the model as it was, and training stays finite', async () => {
    const vae = tiny();
    const before = state(vae);
    const bad = state(vae);
    bad.v.fill(-1);
    expect(() => vae.setOptimizerState(bad)).toThrow(VaeError);
    expect(state(vae)).toEqual(before);
    await vae.fit(rowsOf(64), { epochs: 1, batchSize: 16 });
    expect(vae.getParameters().every(Number.isFinite)).toBe(true);
  });
});

describe("the caller's own callback errors", () => {
  test('reach the caller unchanged, with the completed epochs kept in the model history', async () => {
    class MyError extends Error {}
    const mine = new MyError('stop here');
    const vae = tiny();
    const thrown = await vae.fit(rowsOf(64), { epochs: 3, batchSize: 16, onEpochEnd: (e) => { if (e.epoch === 2) throw mine; } }).catch((e: unknown) => e);
    expect(thrown).toBe(mine);
    expect(vae.history).toHaveLength(2);
    const rejected = new RangeError('async no');
    await expect(tiny().fit(rowsOf(64), { epochs: 2, onEpochEnd: () => Promise.reject(rejected) })).rejects.toBe(rejected);
    const fromBatch = new TypeError('batch no');
    await expect(tiny().fit(rowsOf(64), { epochs: 1, batchSize: 8, onBatchEnd: (b) => { if (b.batch === 3) throw fromBatch; } })).rejects.toBe(fromBatch);
  });

  test('a diverging run rejects with a VaeError carrying the epochs it completed', async () => {
    const vae = new VAE({ inputDim: 4, latentDim: 2, encoderLayers: [4], likelihood: 'gaussian', seed: 1, threads: 1 });
    const err = (await vae.fit(new Float32Array(4 * 64).fill(3e18), { epochs: 3, learningRate: 10 }).catch((e: unknown) => e)) as VaeError & { history: unknown[] };
    expect(err).toBeInstanceOf(VaeError);
    expect(err.code).toBe('ERR_DIVERGED');
    expect(Array.isArray(err.history)).toBe(true);
  });
});

describe('config', () => {
  test('is frozen all the way down, so saving and exporting read the layers the model has', () => {
    const vae = new VAE({ inputDim: 8, latentDim: 2, encoderLayers: [6, 3], threads: 1 });
    expect(() => (vae.config.encoderLayers as number[]).reverse()).toThrow(TypeError);
    expect(() => (vae.config.decoderLayers as number[]).push(1)).toThrow(TypeError);
    expect(vae.config.encoderLayers).toEqual([6, 3]);
    const file = join(dir, 'frozen.vae');
    vae.saveSync(file);
    expect(VAE.loadSync(file).config.encoderLayers).toEqual([6, 3]);
  });
});

describe('tampered model files with a valid checksum', () => {
  // Rewrites a saved file's contents and its checksum, as a careless tool might.
  const tamper = (name: string, edit: (c: ReturnType<typeof decodeModelFile>) => void) => {
    const file = join(dir, name);
    tiny().saveSync(file);
    const contents = decodeModelFile(readFileSync(file), file);
    edit(contents);
    writeFileSync(file, encodeModelFile(contents));
    return file;
  };

  test('are ERR_FILE_FORMAT naming the file and what is wrong', async () => {
    const negativeV = tamper('negative-v.vae', (c) => c.v.fill(-2));
    expectVaeError(() => VAE.loadSync(negativeV), 'ERR_FILE_FORMAT', /negative-v\.vae is not a valid vae-node model file: .*state\.v/);
    const nanParams = tamper('nan-params.vae', (c) => { c.params[0] = NaN; });
    await expectRejects(VAE.load(nanParams), 'ERR_FILE_FORMAT', /nan-params\.vae/);
    const hugeStep = tamper('huge-step.vae', (c) => { c.header.optimizer.step = 2 ** 53; });
    expectVaeError(() => VAE.loadSync(hugeStep), 'ERR_FILE_FORMAT', /optimizer step/);
  });

  test('a bad threads option stays the caller’s ERR_INVALID_ARGUMENT', () => {
    const file = join(dir, 'ok.vae');
    tiny().saveSync(file);
    expectVaeError(() => VAE.loadSync(file, { threads: 0 }), 'ERR_INVALID_ARGUMENT', /options\.threads/);
  });
});

describe('results too large to allocate', () => {
  test('are a typed error naming the argument that sizes them', async () => {
    const wide = new VAE({ inputDim: 4, latentDim: 1 << 20, encoderLayers: [1], decoderLayers: [1], threads: 1 });
    expectVaeError(() => wide.sample(1 << 13), 'ERR_INVALID_ARGUMENT', /^n asks for a result of 8589934592 float32 values/);
    await expectRejects(wide.sampleAsync(1 << 13), 'ERR_INVALID_ARGUMENT', /^n asks for/);
    // Here the noise fits and the decoded images do not.
    const tall = new VAE({ inputDim: 1 << 20, latentDim: 1, encoderLayers: [1], decoderLayers: [1], threads: 1 });
    expectVaeError(() => tall.sample(1 << 13), 'ERR_INVALID_ARGUMENT', /^n asks for a result of 8589934592 float32 values/);
  });
});

describe('sampleAsync', () => {
  test('gives the same draws as sample for the same seed', async () => {
    const vae = tiny();
    expect(Array.from(await vae.sampleAsync(5, { seed: 9 }))).toEqual(Array.from(vae.sample(5, { seed: 9 })));
  });
});
