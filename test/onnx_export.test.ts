import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { VaeError } from '../lib/errors';
import { ACTIVATIONS, LIKELIHOODS, type DenseWeights, type VaeConfig, type VaeWeights } from '../lib/model/types';
import {
  buildOnnxModel,
  exportAll,
  ONNX_GRAPH_KINDS,
  ONNX_GRAPH_SIGNATURES,
  readOnnxMetadata,
  referenceForward,
  writeOnnxModel,
  type OnnxGraphKind,
  type ReferenceInputs,
} from '../lib/onnx';
import { modelMetadata } from '../lib/onnx/metadata';
import { fromBinary, ModelProtoSchema } from '../lib/onnx/proto';
import { makeConfig, randomWeights, scaledArray, uniforms } from './helpers/random';
import { expectVaeError } from './helpers/errors';

const PYTHON = '/usr/bin/python3';
const CHECKER = join(__dirname, '..', 'scripts', 'check_onnx.py');
const TOLERANCE = 1e-5;





function randomInputs(config: VaeConfig, graph: OnnxGraphKind, rows: number, seed: number): ReferenceInputs {
  const next = uniforms(seed);
  const inputs: ReferenceInputs = {};
  for (const name of ONNX_GRAPH_SIGNATURES[graph].inputs) {
    if (name === 'x') {
      // bernoulli data are in [0, 1]; gaussian data are unbounded.
      inputs.x = config.likelihood === 'bernoulli' ? scaledArray(rows * config.inputDim, next, 1, 0) : scaledArray(rows * config.inputDim, next, 4);
    } else if (name === 'z' || name === 'eps') {
      inputs[name] = scaledArray(rows * config.latentDim, next, 3);
    }
  }
  return inputs;
}

async function runOnnx(path: string, graph: OnnxGraphKind, config: VaeConfig, inputs: ReferenceInputs): Promise<Record<string, Float32Array>> {
  const session = await InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const feeds: Record<string, Tensor> = {};
    for (const name of ONNX_GRAPH_SIGNATURES[graph].inputs) {
      const width = name === 'x' ? config.inputDim : config.latentDim;
      const data = Float32Array.from(inputs[name as keyof ReferenceInputs] as Float32Array);
      feeds[name] = new Tensor('float32', data, [data.length / width, width]);
    }
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Largest |actual - expected| / max(1, |expected|): relative, with a unit floor near zero. */
function maxRelativeError(actual: Float32Array, expected: Float64Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  }
  return worst;
}


const root = mkdtempSync(join(tmpdir(), 'vae-onnx-export-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cases = ACTIVATIONS.flatMap((activation) => LIKELIHOODS.map((likelihood) => ({ activation, likelihood })));
const exported: string[] = [];

describe.each(cases)('$activation / $likelihood', ({ activation, likelihood }) => {
  const config = makeConfig({ activation, likelihood, beta: 0.5 });
  const weights = randomWeights(config, ACTIVATIONS.indexOf(activation) * 2 + LIKELIHOODS.indexOf(likelihood) + 1);
  const dir = join(root, `${activation}-${likelihood}`);

  beforeAll(async () => {
    exported.push(...(await exportAll(dir, config, weights, { libraryVersion: '9.9.9-test' })));
  });

  test.each(ONNX_GRAPH_KINDS.flatMap((graph) => [1, 37].map((rows) => ({ graph, rows }))))(
    '$graph matches the reference forward pass (batch $rows)',
    async ({ graph, rows }) => {
      const inputs = randomInputs(config, graph, rows, rows * 31 + 7);
      const expected = referenceForward(config, weights, graph, inputs);
      const actual = await runOnnx(join(dir, `${graph}.onnx`), graph, config, inputs);
      expect(Object.keys(actual).sort()).toEqual([...ONNX_GRAPH_SIGNATURES[graph].outputs].sort());
      for (const name of ONNX_GRAPH_SIGNATURES[graph].outputs) {
        const want = expected[name as keyof typeof expected] as Float64Array;
        expect(maxRelativeError(actual[name], want)).toBeLessThan(TOLERANCE);
      }
    },
  );
});

describe('model structure', () => {
  const config = makeConfig({ activation: 'leaky_relu' });
  const weights = randomWeights(config, 99);
  const parse = (graph: OnnxGraphKind, opset?: number) =>
    fromBinary(ModelProtoSchema, buildOnnxModel(config, weights, { graph, opset, libraryVersion: '1.2.3' }));

  test('IR 8, opset 17 by default, producer vae-node, dynamic batch', () => {
    const model = parse('encoder');
    expect(model.irVersion).toBe(8n);
    expect(model.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', 17n]]);
    expect(model.producerName).toBe('vae-node');
    expect(model.producerVersion).toBe('1.2.3');
    const x = model.graph!.input[0];
    expect(x.name).toBe('x');
    const shape = x.type!.value.case === 'tensorType' ? x.type!.value.value.shape!.dim.map((d) => d.value) : [];
    expect(shape).toEqual([{ case: 'dimParam', value: 'batch' }, { case: 'dimValue', value: 13n }]);
  });

  test('weights are little-endian raw_data initializers used by Gemm with transB = 0', () => {
    const graph = parse('decoder').graph!;
    const w = graph.initializer.find((t) => t.name === 'decoder.0.weight')!;
    expect(w.dims).toEqual([3n, 5n]);
    expect(w.rawData.length).toBe(3 * 5 * 4);
    expect(new DataView(w.rawData.buffer, w.rawData.byteOffset).getFloat32(4, true)).toBe(weights.decoder[0].weight[1]);
    const gemms = graph.node.filter((n) => n.opType === 'Gemm');
    expect(gemms).toHaveLength(3);
    for (const g of gemms) expect(g.attribute.map((a) => [a.name, a.i])).toEqual([['transB', 0n]]);
    expect(graph.node.find((n) => n.opType === 'LeakyRelu')!.attribute[0].f).toBeCloseTo(0.01, 7);
    expect(graph.node[graph.node.length - 1].opType).toBe('Sigmoid');
  });

  test('encoder-mean never computes the log-variance', () => {
    const graph = parse('encoder-mean').graph!;
    expect(graph.output.map((o) => o.name)).toEqual(['mean']);
    expect(graph.node.flatMap((n) => n.output)).not.toContain('logVar');
    expect(graph.initializer.map((t) => t.name)).not.toContain('head.logVar.weight');
  });

  test('noise is always the eps input, never a random op', () => {
    for (const kind of ONNX_GRAPH_KINDS) {
      const graph = parse(kind).graph!;
      expect(graph.node.filter((n) => n.opType.startsWith('Random'))).toEqual([]);
    }
    const reconstruct = parse('reconstruct').graph!;
    expect(reconstruct.input.map((i) => i.name)).toEqual(['x', 'eps']);
    expect(reconstruct.node.map((n) => n.opType)).toEqual(expect.arrayContaining(['Exp', 'Mul', 'Add']));
    expect(reconstruct.initializer.find((t) => t.name === 'half')!.dims).toEqual([]);
  });

  test('a gaussian decoder ends in the output Gemm (identity mean)', () => {
    const gaussian = makeConfig({ likelihood: 'gaussian' });
    const model = fromBinary(ModelProtoSchema, buildOnnxModel(gaussian, randomWeights(gaussian, 3), { graph: 'decoder' }));
    const nodes = model.graph!.node;
    expect(nodes[nodes.length - 1].opType).toBe('Gemm');
    expect(nodes[nodes.length - 1].output).toEqual(['xHat']);
  });

  test('opset 18 also runs in onnxruntime', async () => {
    const path = join(root, 'opset18.onnx');
    await writeOnnxModel(path, config, weights, { graph: 'encoder', opset: 18 });
    const inputs = randomInputs(config, 'encoder', 5, 1);
    const actual = await runOnnx(path, 'encoder', config, inputs);
    const expected = referenceForward(config, weights, 'encoder', inputs);
    expect(maxRelativeError(actual.logVar, expected.logVar!)).toBeLessThan(TOLERANCE);
  });

  test('a model without hidden layers exports and runs', async () => {
    const flat = makeConfig({ encoderLayers: [], decoderLayers: [], likelihood: 'gaussian' });
    const flatWeights = randomWeights(flat, 5);
    const path = join(root, 'flat-reconstruct.onnx');
    await writeOnnxModel(path, flat, flatWeights, { graph: 'reconstruct' });
    const inputs = randomInputs(flat, 'reconstruct', 4, 2);
    const actual = await runOnnx(path, 'reconstruct', flat, inputs);
    expect(maxRelativeError(actual.xHat, referenceForward(flat, flatWeights, 'reconstruct', inputs).xHat!)).toBeLessThan(TOLERANCE);
  });
});

describe('metadata', () => {
  test.each(ONNX_GRAPH_KINDS)('%s round-trips through metadata_props', (graph) => {
    const config = makeConfig({ encoderLayers: [8, 6, 4], decoderLayers: [4], activation: 'softplus', likelihood: 'gaussian', beta: 0.25 });
    const bytes = buildOnnxModel(config, randomWeights(config, 11), { graph, libraryVersion: '0.1.0' });
    const metadata = readOnnxMetadata(bytes, 'test.onnx');
    expect(metadata).toEqual(modelMetadata(config, graph, '0.1.0'));
    expect(metadata).toMatchObject({ library: 'vae-node', graph, inputDim: 13, latentDim: 3, encoderLayers: [8, 6, 4], beta: 0.25 });
    expect(metadata.inputScaling).toMatch(/^none; gaussian/);
  });

  test('the library version defaults to package.json', () => {
    const config = makeConfig();
    const metadata = readOnnxMetadata(buildOnnxModel(config, randomWeights(config, 1), { graph: 'decoder' }), 'm');
    expect(metadata.libraryVersion).toBe(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version);
  });

  test('a foreign or corrupt file is rejected with ERR_FILE_FORMAT', () => {
    expectVaeError(() => readOnnxMetadata(new Uint8Array([0xff, 0xff, 0xff]), 'junk.onnx'), 'ERR_FILE_FORMAT', /junk\.onnx/);
    expectVaeError(() => readOnnxMetadata(new Uint8Array(0), 'empty.onnx'), 'ERR_FILE_FORMAT', /no "library"/);
  });
});

describe('argument validation', () => {
  const config = makeConfig();
  const weights = randomWeights(config, 2);

  test('unknown graph or opset', () => {
    expectVaeError(() => buildOnnxModel(config, weights, { graph: 'decode' as OnnxGraphKind }), 'ERR_INVALID_ARGUMENT', /options\.graph/);
    expectVaeError(() => buildOnnxModel(config, weights, { graph: 'decoder', opset: 16 }), 'ERR_INVALID_ARGUMENT', /options\.opset/);
  });

  test('weights that do not match the config', () => {
    const short = { ...weights, head: { ...weights.head, weight: weights.head.weight.subarray(1) } };
    expectVaeError(() => buildOnnxModel(config, short, { graph: 'encoder' }), 'ERR_INVALID_ARGUMENT', /length 30 \(5 x 6\) for weights\.head\.weight/);
    const missing = { ...weights, decoder: weights.decoder.slice(1) };
    expectVaeError(() => buildOnnxModel(config, missing, { graph: 'decoder' }), 'ERR_INVALID_ARGUMENT', /weights\.decoder/);
    const wider = makeConfig({ encoderLayers: [8, 5] });
    expectVaeError(() => buildOnnxModel(wider, weights, { graph: 'encoder' }), 'ERR_INVALID_ARGUMENT', /weights\.encoder\[0\]\.outDim/);
  });

  test('non-finite weights', () => {
    const bias = weights.decoder[1].bias.slice();
    bias[2] = NaN;
    const bad = { ...weights, decoder: [weights.decoder[0], { ...weights.decoder[1], bias }, weights.decoder[2]] };
    expectVaeError(() => buildOnnxModel(config, bad, { graph: 'decoder' }), 'ERR_NON_FINITE', /weights\.decoder\[1\]\.bias\[2\]/);
  });

  test('bad config fields', () => {
    expectVaeError(() => buildOnnxModel({ ...config, latentDim: 0 }, weights, { graph: 'decoder' }), 'ERR_INVALID_ARGUMENT', /config\.latentDim/);
    expectVaeError(() => buildOnnxModel({ ...config, activation: 'gelu' as never }, weights, { graph: 'decoder' }), 'ERR_INVALID_ARGUMENT', /config\.activation/);
  });

  test('writeOnnxModel writes atomically and reports IO errors', async () => {
    const dir = join(root, 'atomic');
    await exportAll(dir, config, weights, { graphs: ['decoder'] });
    await writeOnnxModel(join(dir, 'decoder.onnx'), config, weights, { graph: 'decoder' });
    expect(readdirSync(dir)).toEqual(['decoder.onnx']);
    await expect(writeOnnxModel(join(root, 'no', 'such', 'dir', 'm.onnx'), config, weights, { graph: 'decoder' })).rejects.toMatchObject({
      code: 'ERR_IO',
    });
  });
});

describe('onnx checker (onnx.checker.check_model, full_check)', () => {
  const hasOnnx = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0;

  test('accepts every exported graph', () => {
    if (!hasOnnx) {
      if (process.env.CI) throw new Error(`${PYTHON} has no onnx module; install python3-onnx to run the ONNX checker`);
      console.warn(`skipped: ${PYTHON} has no onnx module (apt-get install python3-onnx); set CI to make this a failure`);
      return;
    }
    expect(exported.length).toBe(cases.length * ONNX_GRAPH_KINDS.length);
    const result = spawnSync(PYTHON, [CHECKER, ...exported], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(exported.length);
    expect(lines.filter((l) => !l.startsWith('ok '))).toEqual([]);
    expect(result.status).toBe(0);
  });

  test('reports a broken file and exits non-zero', () => {
    if (!hasOnnx) return;
    const path = join(root, 'broken.onnx');
    writeFileSync(path, 'not a model');
    const result = spawnSync(PYTHON, [CHECKER, path], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^FAIL .*broken\.onnx/);
  });
});
