#!/usr/bin/env node
// Is the machine in a noisy spell, and what does the noise slow? Alternates, for a while,
// the FMA probe (registers only) with matrix multiplies whose operands sit in L1, in L2 and
// in L3, on one thread, and prints each one's median and 10th percentile as a fraction of its
// best. On a quiet machine all stay near 1; on a shared one the products drop while the probe
// does not (README, Speed: "What the machine's noise slows").
// Options: --seconds N (default 40), --threads N (default 1).
'use strict';
const { parseArgs } = require('util');
const { loadBinding } = require('../dist/native/binding');
const { secondsPerCall } = require('./timing');

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' }, threads: { type: 'string', default: '1' } } });
const seconds = Number(values.seconds), threads = Number(values.threads);
if (!(seconds > 0)) throw new Error(`--seconds: expected a positive number, got ${JSON.stringify(values.seconds)}`);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads: expected a positive integer, got ${JSON.stringify(values.threads)}`);
const { ops } = loadBinding();

function product(M, N, K) {
  const fill = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const A = fill(M * K), B = fill(K * N), C = new Float32Array(M * N);
  const gflop = (2 * M * N * K) / 1e9;
  return () => gflop / secondsPerCall(() => ops.sgemm(0, 0, M, N, K, 1, A, K, B, N, 0, C, N, threads, 0), 0.05);
}

const contestants = {
  'FMA probe': () => ops.fmaPeak(threads, 0.05),
  'sgemm 48x32x128 (L1)': product(48, 32, 128),
  'sgemm 96x128x256 (L2)': product(96, 128, 256),
  'sgemm 128x400x784 (L3)': product(128, 400, 784),
};
const samples = Object.fromEntries(Object.keys(contestants).map((name) => [name, []]));
const end = Date.now() + seconds * 1000;
while (Date.now() < end) for (const [name, run] of Object.entries(contestants)) samples[name].push(run());

const quantile = (v, q) => [...v].sort((a, b) => a - b)[Math.floor(q * (v.length - 1))];
console.log(`${threads} thread(s), ${samples['FMA probe'].length} rounds over ${seconds} s; GFLOP/s`);
console.log('| contestant | best | median (of best) | 10th percentile (of best) |\n|---|---|---|---|');
for (const [name, v] of Object.entries(samples)) {
  const best = Math.max(...v), pct = (x) => `${x.toFixed(1)} (${Math.round((100 * x) / best)}%)`;
  console.log(`| ${name} | ${best.toFixed(1)} | ${pct(quantile(v, 0.5))} | ${pct(quantile(v, 0.1))} |`);
}
