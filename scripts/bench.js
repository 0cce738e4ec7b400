#!/usr/bin/env node
// npm run bench: every figure is a median over repeated runs after warm-up, reported
// against the machine's measured FMA peak; for encoding, against onnxruntime-node
// running the same exported encoder with the same thread count in this process; and,
// when a python3 with torch is installed, against PyTorch running the same model on the
// same data in a child process, rounds alternating with vae-node's.
// Writes bench/results.json. Options: --quick (fewer repeats), --json PATH,
// --only gemm,training,epoch,encoding,pytorch (those sections only; the FMA peak is always
// measured; the JSON then goes to bench/results.<sections>.json unless --json says otherwise).
'use strict';
const { existsSync, mkdirSync, writeFileSync, mkdtempSync, rmSync } = require('fs');
const { tmpdir, cpus, loadavg } = require('os');
const { execFileSync, spawn, spawnSync } = require('child_process');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');
const { parseArgs } = require('util');
const { createInterface } = require('readline');
const { VAE } = require('../dist');
const { loadBinding } = require('../dist/native/binding');
const { loadEmbeddedFashionMnist, loadIdxDirectory } = require('../dist/data/load');
const { now, median, secondsPerCall, secondsPerAsyncCall } = require('./timing');

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, json: { type: 'string' }, only: { type: 'string' } },
});
const SECTIONS = ['gemm', 'training', 'epoch', 'encoding', 'pytorch'];
const only = args.only ? args.only.split(',') : SECTIONS;
for (const name of only) if (!SECTIONS.includes(name)) throw new Error(`--only: unknown section ${JSON.stringify(name)}; expected some of ${SECTIONS.join(', ')}`);
const want = (name) => only.includes(name);
// A partial run never overwrites the full results.
const jsonPath = args.json ?? (args.only ? `bench/results.${only.join('-')}.json` : 'bench/results.json');
const REPEATS = args.quick ? 3 : 7;
const THREADS = [1, 2];
const { ops, cpuInfo } = loadBinding();

/** Median seconds of fn() over REPEATS timed runs of at least minSeconds each (after one warm-up). */
function timeSync(fn, minSeconds = 0.2) {
  fn();
  return median(Array.from({ length: REPEATS }, () => secondsPerCall(fn, minSeconds)));
}

// With 20 ms, whatever ran right after onnxruntime at batch 128 on 2 threads was
// 5-40% slower (swapping the order swapped the results); from 100 ms on, the order
// no longer mattered.
const QUIET_GAP_MS = 100;

/**
 * Runs contestants (async functions that each time themselves and resolve to
 * seconds) in rounds, interleaved so that all of them see the same machine
 * state. Returns the median seconds of each, and ratio(i, j): the median over
 * rounds of seconds[i] / seconds[j] in the same round (noise hits both sides
 * of such a ratio alike, so it is steadier than a ratio of medians).
 */
async function alternate(contestants, rounds = REPEATS + 2) {
  const perRound = [];
  for (let r = 0; r < rounds; r++) {
    const round = new Array(contestants.length);
    // Each round starts with the next contestant, so that none is always the
    // one that follows another's spinning thread pool.
    for (let k = 0; k < contestants.length; k++) {
      const j = (k + r) % contestants.length;
      // A quiet gap: pools that spin after their last job (this library's,
      // onnxruntime's, OpenMP's) must not steal the cores from the next one.
      await new Promise((resolve) => setTimeout(resolve, QUIET_GAP_MS));
      round[j] = await contestants[j]();
    }
    perRound.push(round);
  }
  return {
    seconds: contestants.map((_, j) => median(perRound.map((round) => round[j]))),
    ratio: (i, j) => median(perRound.map((round) => round[i] / round[j])),
  };
}

/** alternate() over functions timed by secondsPerAsyncCall (seconds per call). */
async function timeInterleaved(fns, minSeconds = 0.1) {
  for (const fn of fns) await fn();
  return alternate(fns.map((fn) => () => secondsPerAsyncCall(fn, minSeconds)));
}

function table(title, header, rows) {
  console.log(`\n${title}`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

const f1 = (x) => x.toFixed(1);
const pct = (x) => `${(100 * x).toFixed(0)}%`;
const int = (x) => Math.round(x).toLocaleString('en-US');

const FLOP_PER_SAMPLE = 3.29e6; // the classic model's multiply-adds per training sample, x2 (shared/BASELINES.md)

/** 1. The FMA peak, that every other figure is a fraction of. */
async function benchPeak(results) {
  const measure = () => {
    const peak = {};
    for (const t of THREADS) peak[t] = median(Array.from({ length: REPEATS }, () => ops.fmaPeak(t, 0.2)));
    return peak;
  };
  // The probe uses no memory, so its threads scale almost perfectly on separate cores. A run
  // once measured 102 GFLOP/s on 2 threads against 102 on 1 (a core taken for that second-long
  // spell, 200 just after): every "% start peak" then read over 100%. Measure again once.
  const scalesPoorly = (peak) => THREADS.some((t) => peak[t] < 0.75 * t * peak[1]);
  let peak = measure();
  if (scalesPoorly(peak)) {
    console.log(`FMA peak scaled poorly (${THREADS.map((t) => `${t}: ${f1(peak[t])}`).join(', ')} GFLOP/s); measuring again after 1 s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    peak = measure();
  }
  results.fmaPeakGflops = peak;
  // The probe runs the widest FMA the matrix multiply uses (AVX-512F or AVX2).
  table(`FMA peak (independent FMA chains, ${cpuInfo().gemmBackend}: the matrix multiply's backend)`, ['threads', 'GFLOP/s'], THREADS.map((t) => [t, f1(peak[t])]));
  return peak;
}

/** 2. Matrix multiply for the shapes the model uses. */
function benchGemm(results, peak) {
  const shapes = [];
  for (const B of [128, 1024])
    shapes.push(
      { name: `fwd x W1 (${B}x784 . 784x400)`, ta: 0, tb: 0, M: B, N: 400, K: 784 },
      { name: `fwd h W2 (${B}x400 . 400x40)`, ta: 0, tb: 0, M: B, N: 40, K: 400 },
      { name: `fwd z W3 (${B}x20 . 20x400)`, ta: 0, tb: 0, M: B, N: 400, K: 20 },
      { name: `fwd h W4 (${B}x400 . 400x784)`, ta: 0, tb: 0, M: B, N: 784, K: 400 },
      { name: `dW4 = h^T dY (400x${B} . ${B}x784)`, ta: 1, tb: 0, M: 400, N: 784, K: B },
      { name: `dh = dY W4^T (${B}x784 . 784x400)`, ta: 0, tb: 1, M: B, N: 400, K: 784 },
      { name: `dW1 = x^T dH (784x${B} . ${B}x400)`, ta: 1, tb: 0, M: 784, N: 400, K: B },
      { name: `dW2 = h^T dHead (400x${B} . ${B}x40)`, ta: 1, tb: 0, M: 400, N: 40, K: B },
      { name: `dh1 = dHead W2^T (${B}x40 . 40x400)`, ta: 0, tb: 1, M: B, N: 400, K: 40 },
      { name: `dW3 = z^T dH3 (20x${B} . ${B}x400)`, ta: 1, tb: 0, M: 20, N: 400, K: B },
      { name: `dz = dH3 W3^T (${B}x400 . 400x20)`, ta: 0, tb: 1, M: B, N: 20, K: 400 },
    );
  results.gemm = [];
  const rows = [];
  for (const s of shapes) {
    const A = new Float32Array(s.M * s.K).fill(0.5), Bm = new Float32Array(s.K * s.N).fill(0.25), C = new Float32Array(s.M * s.N);
    const lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    const row = { ...s };
    const cells = [s.name];
    for (const t of THREADS) {
      const sec = timeSync(() => ops.sgemm(s.ta, s.tb, s.M, s.N, s.K, 1, A, lda, Bm, ldb, 0, C, s.N, t, 0), 0.05);
      const gflops = (2 * s.M * s.N * s.K) / sec / 1e9;
      row[`gflops${t}`] = gflops;
      cells.push(`${f1(gflops)} (${pct(gflops / peak[t])})`);
    }
    results.gemm.push(row);
    rows.push(cells);
  }
  table('Matrix multiply, GFLOP/s (% of FMA peak)', ['shape', '1 thread', '2 threads'], rows);
}

/** 3. Training throughput of the classic model, and event-loop delay while it trains. */
async function benchTraining(results, peak, x) {
  results.training = [];
  results.trainingScaling = {};
  const rows = [], scaling = [];
  for (const batchSize of [128, 1024]) {
    // 1 and 2 threads take turns epoch by epoch, and each epoch is followed by an FMA probe
    // on its thread count: the machine is shared, so the fraction of the peak and the scaling
    // are medians of ratios taken within a round, where noise hits both sides alike.
    // Besides the epoch's throughput, each epoch's median step (full batches only, timed
    // natively): the epoch's mean includes the steps that other tenants slowed down, the
    // median is closer to the step of a quiet machine (as an isolated step is timed), though
    // in a noisy spell it is slow too.
    const runs = THREADS.map((t) => ({ t, vae: new VAE({ seed: 1, threads: t }), loop: monitorEventLoopDelay({ resolution: 1 }), fraction: [], stepSeconds: [], stepFraction: [] }));
    for (const run of runs) await run.vae.fit(x, { epochs: 1, batchSize }); // warm-up
    const timed = await alternate(runs.map((run) => async () => {
      const steps = [];
      const onBatchEnd = (b) => { if (b.batch * batchSize <= x.rows) steps.push(b.seconds); };
      run.loop.enable();
      const [e] = await run.vae.fit(x, { epochs: 1, batchSize, onBatchEnd });
      run.loop.disable();
      const peakNow = ops.fmaPeak(run.t, 0.1);
      const step = median(steps);
      run.fraction.push((e.samplesPerSecond * FLOP_PER_SAMPLE) / 1e9 / peakNow);
      run.stepSeconds.push(step);
      run.stepFraction.push((batchSize / step) * FLOP_PER_SAMPLE / 1e9 / peakNow);
      return 1 / e.samplesPerSecond;
    }), Math.max(5, REPEATS));
    runs.forEach((run, j) => {
      const sps = 1 / timed.seconds[j]; // seconds per sample, median over the rounds
      const gflops = (sps * FLOP_PER_SAMPLE) / 1e9;
      const row = {
        batchSize, threads: run.t, samplesPerSecond: sps, gflops, fractionOfPeak: median(run.fraction), fractionOfStartPeak: gflops / peak[run.t],
        medianStepSeconds: median(run.stepSeconds), medianStepFractionOfPeak: median(run.stepFraction),
        eventLoopDelayMs: { p50: run.loop.percentile(50) / 1e6, p99: run.loop.percentile(99) / 1e6 },
      };
      results.training.push(row);
      rows.push([batchSize, run.t, int(sps), f1(gflops), pct(row.fractionOfPeak), pct(row.fractionOfStartPeak),
        (1e3 * row.medianStepSeconds).toFixed(2), int(batchSize / row.medianStepSeconds), pct(row.medianStepFractionOfPeak),
        `${row.eventLoopDelayMs.p50.toFixed(2)} / ${row.eventLoopDelayMs.p99.toFixed(2)}`]);
    });
    const ratio = timed.ratio(0, THREADS.length - 1);
    results.trainingScaling[batchSize] = ratio;
    scaling.push(`batch ${batchSize}: ${ratio.toFixed(2)}x`);
  }
  table('Training, classic 784-400-20 model, whole epochs over 10,000 images (3.29 MFLOP/sample); % peak: against an FMA probe run right after each epoch (median of the per-epoch ratios); % start peak: against the probe at the start of the run; median step: the median full batch of each epoch, timed natively (median over the epochs; its % peak against the same probes)',
    ['batch', 'threads', 'samples/s', 'GFLOP/s', '% peak', '% start peak', 'median step ms', 'median step samples/s', 'median step % peak', 'event-loop delay p50 / p99 ms'], rows);
  console.log(`Scaling from ${THREADS[0]} to ${THREADS.at(-1)} threads (median of per-round ratios, the thread counts taking turns): ${scaling.join(', ')}`);
}

/** 3b. A whole 60,000-image Fashion-MNIST epoch, end to end (shuffling and data handling included). */
async function benchFullEpoch(results) {
  const fullDir = '/usr/share/datasets/fashion-mnist';
  if (!existsSync(fullDir)) return console.log(`\n(whole-epoch section skipped: ${fullDir} missing; apt-get install dataset-fashion-mnist)`);
  const { train } = await loadIdxDirectory(fullDir);
  const rows = [];
  for (const t of THREADS) {
    const vae = new VAE({ seed: 1, threads: t });
    const seconds = [];
    for (let r = 0; r < 3; r++) {
      const start = now();
      await vae.fit(train.x, { epochs: 1, batchSize: 128 });
      seconds.push(now() - start);
    }
    const sec = median(seconds);
    results.fullEpoch = { ...(results.fullEpoch ?? {}), [t]: { seconds: sec, samplesPerSecond: train.x.rows / sec } };
    rows.push([t, sec.toFixed(2), int(train.x.rows / sec)]);
  }
  table(`Whole epoch over the ${train.x.rows.toLocaleString('en-US')}-image Fashion-MNIST training set, batch 128 (median of 3, wall clock of fit())`, ['threads', 'seconds', 'samples/s'], rows);
}

/** 4. Encoding throughput: native vs onnxruntime-node on the same exported encoder. */
async function benchEncoding(results, peak, x) {
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (err) {
    console.log(`\n(onnxruntime-node unavailable: ${err.message})`);
  }
  const vae = new VAE({ seed: 1 });
  await vae.fit(x, { epochs: 1 });
  // Multiply-adds x 2 per row of the encoder's mean: its hidden layers, then the mean half of the head.
  const { inputDim, encoderLayers, latentDim } = vae.config;
  const hiddenFlop = [inputDim, ...encoderLayers].slice(0, -1).reduce((sum, n, i) => sum + 2 * n * encoderLayers[i], 0);
  const meanFlopPerRow = hiddenFlop + 2 * (encoderLayers.at(-1) ?? inputDim) * latentDim;
  const dir = mkdtempSync(path.join(tmpdir(), 'vae-bench-'));
  try {
    await vae.exportOnnxAll(dir, { graphs: ['encoder', 'encoder-mean'] });
    results.encoding = [];
    const rows = [];
    for (const t of THREADS) {
      vae.threads = t;
      const sessions = ort && {
        mean: await ort.InferenceSession.create(path.join(dir, 'encoder-mean.onnx'), { intraOpNumThreads: t, interOpNumThreads: 1 }),
        both: await ort.InferenceSession.create(path.join(dir, 'encoder.onnx'), { intraOpNumThreads: t, interOpNumThreads: 1 }),
      };
      for (const batch of [1, 128, 4096]) {
        const input = x.data.subarray(0, batch * 784);
        const mean = new Float32Array(batch * 20);
        const tensor = sessions && new ort.Tensor('float32', input, [batch, 784]);
        // vae-node and onnxruntime alternate round by round (see alternate).
        const fns = [() => vae.encodeMean(input), () => vae.encode(input), () => vae.encodeMeanAsync(input, mean)];
        if (sessions) fns.push(() => sessions.mean.run({ x: tensor }), () => sessions.both.run({ x: tensor }));
        const { seconds, ratio } = await timeInterleaved(fns);
        const [nativeMean, nativeBoth, nativeAsync, ortMean, ortBoth] = seconds.map((s) => batch / s);
        const meanFractionOfPeak = (nativeMean * meanFlopPerRow) / 1e9 / peak[t];
        const row = { threads: t, batch, nativeMeanSync: nativeMean, nativeMeanAndLogVarSync: nativeBoth, nativeMeanAsync: nativeAsync, meanFractionOfPeak };
        const cells = [t, batch, int(nativeMean), pct(meanFractionOfPeak), int(nativeBoth), int(nativeAsync)];
        if (sessions) {
          // Speed ratio vae-node / onnxruntime = onnxruntime's time / vae-node's, round by round.
          const ratioMean = ratio(3, 0), ratioBoth = ratio(4, 1);
          const ortMeanFractionOfPeak = (ortMean * meanFlopPerRow) / 1e9 / peak[t];
          Object.assign(row, { onnxruntimeMean: ortMean, onnxruntimeMeanAndLogVar: ortBoth, ratioMean, ratioBoth, onnxruntimeMeanFractionOfPeak: ortMeanFractionOfPeak });
          cells.push(int(ortMean), pct(ortMeanFractionOfPeak), int(ortBoth), `${ratioMean.toFixed(2)}x`, `${ratioBoth.toFixed(2)}x`);
        }
        results.encoding.push(row);
        rows.push(cells);
      }
    }
    table(`Encoding (samples/s); % peak: the mean's GFLOP/s (${(meanFlopPerRow / 1e3).toFixed(1)} kFLOP per row) against the start-of-run FMA peak; ratio = vae-node / onnxruntime-node, same thread count, same process`,
      ['threads', 'batch', 'mean (sync)', '% peak', 'mean+logVar (sync)', 'mean (async)', 'ort mean', 'ort % peak', 'ort mean+logVar', 'ratio mean', 'ratio mean+logVar'], rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Python interpreter that can import torch, or null. */
function findTorchPython() {
  for (const python of [process.env.VAE_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return python;
  }
  return null;
}

/** scripts/bench_torch.py as a long-lived process answering one JSON line per command. */
class TorchWorker {
  constructor(python, dataPath, rows, cols, config) {
    this.child = spawn(python, [path.join(__dirname, 'bench_torch.py'), dataPath, String(rows), String(cols), String(config.torchThreads)], {
      env: { ...process.env, ...config.env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async ask(command) {
    this.child.stdin.write(`${command}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`bench_torch.py exited (answering ${command})`);
    const answer = JSON.parse(value);
    if (answer.error) throw new Error(`bench_torch.py: ${answer.error}`);
    return answer;
  }

  close() { this.child.stdin.end(); }
}

// PyTorch's thread settings decide its speed on 2 cores (shared/BASELINES.md):
// its intra-op threads and OpenBLAS's both spin, and together they oversubscribe.
const TORCH_CONFIGS = [
  { threads: 1, label: 'torch 1 + BLAS 1', torchThreads: 1, env: { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } },
  { threads: 2, label: 'torch 1 + OpenBLAS 2', torchThreads: 1, env: { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '2' } },
  { threads: 2, label: 'torch 2 + OpenBLAS 2, OMP passive', torchThreads: 2, env: { OMP_NUM_THREADS: '2', OMP_WAIT_POLICY: 'PASSIVE', OPENBLAS_NUM_THREADS: '2' } },
];

/**
 * 5. The same model in PyTorch (Debian's python3-torch), trained on the same
 * images at batch 128 and encoding the same batch of 4096, its rounds
 * alternating with vae-node's in this run; ratio = vae-node / PyTorch speed.
 */
async function benchPytorch(results, x) {
  const python = findTorchPython();
  if (!python) {
    results.pytorch = { skipped: 'no python3 that imports torch' };
    return console.log('\n(PyTorch section skipped: no python3 imports torch. On Debian: apt-get install --no-install-recommends python3-torch libopenblas0-pthread)');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'vae-bench-torch-'));
  const dataPath = path.join(dir, 'x.f32');
  writeFileSync(dataPath, new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength));
  const batch = 128, encodeRows = 4096;
  const input = x.data.subarray(0, encodeRows * x.cols);
  results.pytorch = { python, configs: [] };
  const rows = [];
  try {
    for (const config of TORCH_CONFIGS) {
      const worker = new TorchWorker(python, dataPath, x.rows, x.cols, config);
      try {
        const info = await worker.ask('info');
        const vae = new VAE({ seed: 1, threads: config.threads });
        const epoch = async (fit) => { const start = now(); await fit(); return now() - start; };
        await vae.fit(x, { epochs: 1, batchSize: batch });
        await worker.ask(`train ${batch}`); // warm-up epochs
        const train = await alternate([
          () => epoch(() => vae.fit(x, { epochs: 1, batchSize: batch })),
          () => epoch(() => worker.ask(`train ${batch}`)),
        ], Math.max(3, REPEATS - 2));
        const encode = await alternate([
          () => secondsPerAsyncCall(() => vae.encodeMean(input), 0.1),
          async () => (await worker.ask(`encode ${encodeRows}`)).seconds,
        ]);
        const row = {
          threads: config.threads, label: config.label, torch: info.torch, blas: info.blas, torchThreads: info.threads,
          trainSamplesPerSecond: { vaeNode: x.rows / train.seconds[0], pytorch: x.rows / train.seconds[1] }, trainRatio: train.ratio(1, 0),
          encodeSamplesPerSecond: { vaeNode: encodeRows / encode.seconds[0], pytorch: encodeRows / encode.seconds[1] }, encodeRatio: encode.ratio(1, 0),
        };
        results.pytorch.configs.push(row);
        rows.push([config.threads, config.label, int(row.trainSamplesPerSecond.pytorch), int(row.trainSamplesPerSecond.vaeNode), `${row.trainRatio.toFixed(2)}x`,
          int(row.encodeSamplesPerSecond.pytorch), int(row.encodeSamplesPerSecond.vaeNode), `${row.encodeRatio.toFixed(2)}x`]);
      } finally {
        worker.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const first = results.pytorch.configs[0];
  table(`PyTorch ${first?.torch} (${first?.blas}) against vae-node, same model and data, rounds alternating: training epochs over ${x.rows.toLocaleString('en-US')} images at batch ${batch}, encoder mean at batch ${encodeRows} (samples/s); ratio = vae-node / PyTorch`,
    ['threads', 'PyTorch threads', 'torch train', 'vae-node train', 'ratio', 'torch encode', 'vae-node encode', 'ratio'], rows);
}

async function main() {
  // The commit and the machine's load when the run began, to tell runs apart later.
  let commit = null;
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.join(__dirname, '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a git checkout */ }
  const results = {
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadAverage1m: loadavg()[0], ...cpuInfo() },
    commit, sections: only, repeats: REPEATS, date: new Date().toISOString(),
  };
  const peak = await benchPeak(results);
  const { x } = await loadEmbeddedFashionMnist();
  if (want('gemm')) benchGemm(results, peak);
  if (want('training')) await benchTraining(results, peak, x);
  if (want('epoch')) await benchFullEpoch(results);
  if (want('encoding')) await benchEncoding(results, peak, x);
  if (want('pytorch')) await benchPytorch(results, x);

  mkdirSync(path.dirname(path.resolve(jsonPath)), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify(results, null, 2));
  console.log(`\nwrote ${jsonPath}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
