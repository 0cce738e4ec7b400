#!/usr/bin/env node
// Reference run of the classic VAE (784-400-20, relu, bernoulli on grey pixels, beta 1,
// Adam 1e-3, batch 128) for 10 epochs on the full Fashion-MNIST training set, printing
// per-epoch train loss, test negative ELBO, seconds and samples/s.
// Needs Debian's dataset-fashion-mnist (or --data DIR with the four IDX files) and a build
// (npm install). Usage: node scripts/reference_run.js [--data DIR] [--epochs 10] [--seed 1]
//   [--threads N] [--json out.json]
'use strict';
const { parseArgs } = require('util');
const { writeFileSync } = require('fs');
const { VAE } = require('../dist');
const { loadIdxDirectory } = require('../dist/data/load');

async function main() {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
      epochs: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      threads: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const { train, test } = await loadIdxDirectory(values.data);
  if (!test) throw new Error(`${values.data} has no t10k test split`);
  const vae = new VAE({ seed: Number(values.seed), ...(values.threads ? { threads: Number(values.threads) } : {}) });
  console.log(`classic VAE 784-400-20, ${vae.parameterCount} parameters, ${vae.threads} threads; train ${train.x.rows} rows, test ${test.x.rows} rows`);
  console.log('epoch | train loss | test -ELBO | test rec | test KL | seconds | samples/s');
  console.log('------|------------|------------|----------|---------|---------|----------');
  const rows = [];
  await vae.fit(train.x, {
    epochs: Number(values.epochs),
    batchSize: 128,
    learningRate: 1e-3,
    validationData: test.x,
    onEpochEnd: (e) => {
      rows.push(e);
      const cells = [
        String(e.epoch).padStart(5), e.loss.toFixed(2).padStart(10), e.valLoss.toFixed(2).padStart(10),
        e.valReconstruction.toFixed(2).padStart(8), e.valKl.toFixed(2).padStart(7), e.seconds.toFixed(2).padStart(7),
        Math.round(e.samplesPerSecond).toString().padStart(9),
      ];
      console.log(cells.join(' | '));
    },
  });
  const final = await vae.evaluateAsync(test.x, { seed: 0 });
  console.log(`final test negative ELBO ${final.loss.toFixed(2)} nats (reconstruction ${final.reconstruction.toFixed(2)}, KL ${final.kl.toFixed(2)})`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ threads: vae.threads, epochs: rows, final }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
