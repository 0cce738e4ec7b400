/**
 * vae-node in worker threads: the addon loads in each one, models there train exactly as on
 * the main thread (several at once sharing the native thread pool), and terminating a worker
 * in the middle of a call leaves the process alive.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { VAE } from '../lib/model/vae';
import { DIST, ensureDist } from './helpers/dist';

const ROWS = 600;
const FIT = { epochs: 2, batchSize: 128 };
const MODEL = { inputDim: 784, latentDim: 8, encoderLayers: [64], seed: 3, threads: 2 };

function trainingData(): Float32Array {
  const x = new Float32Array(ROWS * 784);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
  return x;
}

/** Trains MODEL on a copy of x in a new worker thread; resolves with its parameters. */
function trainInWorker(x: Float32Array): Promise<Float32Array> {
  const source = `
    const { parentPort, workerData } = require('worker_threads');
    const { VAE } = require(workerData.dist);
    const vae = new VAE(workerData.model);
    vae.fit(workerData.x, workerData.fit).then(() => parentPort.postMessage(vae.getParameters()));`;
  const worker = new Worker(source, { eval: true, workerData: { dist: DIST, x, model: MODEL, fit: FIT } });
  return new Promise((resolve, reject) => {
    worker.once('message', (params: Float32Array) => {
      resolve(new Float32Array(params)); // a copy in this file's realm (jest gives each its own)
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
  });
}

beforeAll(() => ensureDist(), 120_000);

test('two workers training at once get the parameters the main thread gets', async () => {
  const x = trainingData();
  const vae = new VAE(MODEL);
  await vae.fit(x, FIT);
  const expected = vae.getParameters();
  const [a, b] = await Promise.all([trainInWorker(x), trainInWorker(x)]);
  expect(a).toEqual(expected);
  expect(b).toEqual(expected);
});

test('terminating workers in the middle of sync and async calls leaves the process alive', () => {
  // Node completes the native work that was running but the worker can no longer run JS:
  // settling the call's promise or creating its result must then do nothing (before the fix,
  // the process aborted in napi_throw or crashed writing through an empty Float64Array).
  const run = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'terminate_workers.js')], { encoding: 'utf8', timeout: 120_000 });
  expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  expect(run.stdout).toContain('survived 14 workers');
});
