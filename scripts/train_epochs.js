#!/usr/bin/env node
// Trains the classic model (784-400-20, bernoulli, Adam) on the 10,000 embedded images and
// prints each epoch's samples/s: the load for profiling a training step, e.g. with the
// phase-timing build (README, "Where a training step's time goes"):
//   npx cmake-js compile --out build-phases --CDVAE_PHASE_TIMES=ON
//   VAE_NODE_BINARY=build-phases/Release/vae_native.node node scripts/train_epochs.js --threads 2
// Options: --threads N (default 2), --batch N (default 128), --epochs N (default 5).
'use strict';
const { parseArgs } = require('util');
const { VAE } = require('../dist');
const { loadEmbeddedFashionMnist } = require('../dist/data/load');

const { values } = parseArgs({
  options: { threads: { type: 'string', default: '2' }, batch: { type: 'string', default: '128' }, epochs: { type: 'string', default: '5' } },
});
const positive = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(values[name])}`);
  return n;
};

(async () => {
  const threads = positive('threads'), batchSize = positive('batch'), epochs = positive('epochs');
  const { x } = await loadEmbeddedFashionMnist();
  const vae = new VAE({ seed: 1, threads });
  const history = await vae.fit(x, { epochs, batchSize });
  console.log(`samples/s per epoch (${threads} threads, batch ${batchSize}): ${history.map((e) => Math.round(e.samplesPerSecond).toLocaleString('en-US')).join(', ')}`);
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
