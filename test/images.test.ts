import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { VaeError } from '../lib/errors';
import { imageGrid, reconstructionGrid } from '../lib/image/grid';
import { latentManifold, manifoldAxis, manifoldLatents, normalQuantile } from '../lib/image/manifold';
import { CLASS_COLORS, latentScatter } from '../lib/image/scatter';
import { trainingCurves } from '../lib/image/curves';
import { createCanvas, drawLine, encodePng, writePng } from '../lib/image/png';
import { formatTicks, niceTicks } from '../lib/image/axes';

const decode = (buf: Buffer) => PNG.sync.read(buf);
/** RGBA of pixel (x, y) of a decoded PNG (pngjs always decodes to RGBA). */
const rgba = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4));
const hasColor = (png: PNG, c: readonly number[]) => {
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i] === c[0] && png.data[i + 1] === c[1] && png.data[i + 2] === c[2]) return true;
  return false;
};

describe('imageGrid', () => {
  test('lays out a tiny known grid with exact, clamped pixel values', () => {
    // 5 images of 2 x 3, value = image index / 4 except a few out-of-range values to clamp.
    const images = new Float32Array(5 * 6);
    for (let i = 0; i < 5; i++) images.fill(i / 4, i * 6, i * 6 + 6);
    images[1] = -1; // image 0, pixel (1, 0) -> 0
    images[6 + 5] = 2; // image 1, pixel (2, 1) -> 255
    const buf = imageGrid(images, 5, 2, 3, { cols: 3, pad: 1, padValue: 0.2 });
    const png = decode(buf);
    expect([png.width, png.height]).toEqual([3 * (3 + 1) + 1, 2 * (2 + 1) + 1]);
    expect(buf[25]).toBe(0); // IHDR colour type 0: greyscale
    const grey = (x: number, y: number) => rgba(png, x, y)[0];
    expect(grey(0, 0)).toBe(51); // padding
    expect(grey(1, 1)).toBe(0); // image 0 at tile (0, 0)
    expect(grey(5, 1)).toBe(64); // image 1 at tile (1, 0): round(0.25 * 255)
    expect(grey(7, 2)).toBe(255); // image 1 pixel (2, 1) clamped from 2
    expect(grey(2, 1)).toBe(0); // image 0 pixel (1, 0) clamped from -1
    expect(grey(9, 1)).toBe(128); // image 2 at tile (2, 0)
    expect(grey(1, 4)).toBe(191); // image 3 on the second row
    expect(grey(5, 4)).toBe(255); // image 4
    expect(grey(9, 4)).toBe(51); // empty slot stays padding
  });

  test('scale enlarges tiles and RGB input gives an RGB PNG', () => {
    const png = decode(imageGrid(new Float32Array(4 * 4 * 4 * 3).fill(0.5), 4, 4, 4, { scale: 3, pad: 0, channels: 3 }));
    expect([png.width, png.height]).toEqual([24, 24]);
    expect(rgba(png, 23, 23)).toEqual([128, 128, 128, 255]);
    expect(() => imageGrid(new Float32Array(10), 2, 2, 3)).toThrow(VaeError);
    expect(() => imageGrid(new Float32Array(12), 2, 2, 3, { scale: 0 })).toThrow(/options\.scale/);
  });
});

describe('reconstructionGrid', () => {
  test('puts each row of originals directly above its reconstructions', () => {
    const orig = new Float32Array(3 * 4).fill(1);
    const recon = new Float32Array(3 * 4).fill(0.5);
    const png = decode(reconstructionGrid(orig, recon, 3, 2, 2, { cols: 2, pad: 1, labels: false }));
    const bandH = 2 * 2 + 1, gap = 6;
    expect([png.width, png.height]).toEqual([2 * 3 + 1, 2 * bandH + gap + 2]);
    expect(rgba(png, 1, 1)[0]).toBe(255); // first original
    expect(rgba(png, 1, 4)[0]).toBe(128); // its reconstruction right below
    expect(rgba(png, 1, 1 + bandH + gap)[0]).toBe(255); // second band: original 2
    expect(rgba(png, 1, 1 + bandH + gap + 3)[0]).toBe(128);
    const labelled = decode(reconstructionGrid(new Float32Array(784).fill(1), new Float32Array(784), 1, 28, 28));
    expect(labelled.width).toBeGreaterThan(28 + 30); // a left margin holds the ORIG / RECON labels
    expect(hasColor(labelled, [110, 190, 255])).toBe(true); // ORIG label colour
    expect(hasColor(labelled, [255, 165, 60])).toBe(true); // RECON label colour
  });
});

describe('latentManifold', () => {
  test('normalQuantile matches known values', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 7);
    expect(normalQuantile(0.05)).toBeCloseTo(-1.644853627, 7);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 6);
    expect(() => normalQuantile(1)).toThrow(VaeError);
  });

  test('calls decodeFn once with the Gaussian-quantile grid, top row = high z1', () => {
    const calls: { z: Float32Array; n: number }[] = [];
    const g = 4;
    const png = decode(latentManifold((z, n) => {
      calls.push({ z: z.slice(), n });
      const out = new Float32Array(n * 6);
      for (let i = 0; i < n; i++) out.fill(i / (n - 1), i * 6, i * 6 + 6);
      return out;
    }, { gridSize: g, h: 2, w: 3 }));
    expect(calls.length).toBe(1);
    const { z, n } = calls[0];
    expect(n).toBe(g * g);
    expect(z.length).toBe(g * g * 2);
    const axis = [0.05, 0.35, 0.65, 0.95].map(normalQuantile);
    manifoldAxis(g).forEach((v, i) => expect(v).toBeCloseTo(axis[i], 12));
    expect(manifoldAxis(g)[3]).toBe(-manifoldAxis(g)[0]);
    for (let r = 0; r < g; r++) {
      for (let c = 0; c < g; c++) {
        expect(z[(r * g + c) * 2]).toBeCloseTo(axis[c], 6);
        expect(z[(r * g + c) * 2 + 1]).toBeCloseTo(axis[g - 1 - r], 6);
      }
    }
    expect(z[0]).toBeCloseTo(-1.6449, 4);
    expect(z[1]).toBeCloseTo(1.6449, 4);
    expect([png.width, png.height]).toEqual([g * 3, g * 2]);
    expect(rgba(png, 0, 0)[0]).toBe(0); // tile 0
    expect(rgba(png, g * 3 - 1, g * 2 - 1)[0]).toBe(255); // last tile
  });

  test('higher-dimensional latents vary only the chosen dims; bad decoder output is reported', () => {
    const z = manifoldLatents({ gridSize: 3, latentDim: 4, dims: [2, 0], range: 2 });
    expect(Array.from(z.subarray(0, 4))).toEqual([2, 0, -2, 0]);
    expect(() => latentManifold(() => new Float32Array(3), { gridSize: 2 })).toThrow(/Expected a Float32Array of 4 x 28 x 28 = 3136 values for the result of decodeFn/);
  });
});

describe('latentScatter', () => {
  test('draws coloured points with a legend column', () => {
    const n = 200;
    const means = new Float32Array(n * 2);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 3;
      means[2 * i] = labels[i] * 3 + Math.sin(i);
      means[2 * i + 1] = Math.cos(i);
    }
    const png = decode(latentScatter(means, labels, { size: 300, classNames: ['A', 'B', 'C'], alpha: 1 }));
    expect(png.height).toBe(300);
    expect(png.width).toBeGreaterThan(300);
    for (const k of [0, 1, 2]) expect(hasColor(png, CLASS_COLORS[k])).toBe(true);
    expect(hasColor(png, CLASS_COLORS[3])).toBe(false);
    const noLegend = decode(latentScatter(means, undefined, { size: 200 }));
    expect([noLegend.width, noLegend.height]).toEqual([200, 200]);
    expect(() => latentScatter(means, labels.subarray(1))).toThrow(/one label per point \(200\) for labels/);
  });
});

describe('trainingCurves', () => {
  test('plots train and validation loss at the requested size', () => {
    const history = Array.from({ length: 10 }, (_, i) => ({ epoch: i + 1, loss: 100 / (i + 1), valLoss: 110 / (i + 1) + i }));
    const png = decode(trainingCurves(history));
    expect([png.width, png.height]).toEqual([640, 400]);
    expect(hasColor(png, [31, 119, 180])).toBe(true);
    expect(hasColor(png, [255, 127, 14])).toBe(true);
    const single = decode(trainingCurves([{ epoch: 1, loss: 5 }], { width: 200, height: 150 }));
    expect([single.width, single.height]).toEqual([200, 150]);
    expect(hasColor(single, [255, 127, 14])).toBe(false);
    expect(() => trainingCurves([])).toThrow(/non-empty Array .* for history/);
  });

  test('axis ticks are nice numbers with one notation per axis', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(formatTicks([0.0006, 0.0008, 0.001, 0.0012], 0.0002)).toEqual(['0.0006', '0.0008', '0.0010', '0.0012']);
    expect(formatTicks([0, 2e6, 4e6], 2e6)).toEqual(['0', '2e6', '4e6']);
  });
});

describe('png helpers', () => {
  test('writePng writes a decodable file; drawLine hits both endpoints', async () => {
    const c = createCanvas(10, 5, [0, 0, 0]);
    drawLine(c, 0, 0, 9, 4, [255, 0, 0]);
    const dir = mkdtempSync(path.join(tmpdir(), 'vae-png-'));
    try {
      const file = path.join(dir, 'line.png');
      await writePng(file, encodePng(c));
      const png = decode(readFileSync(file));
      expect(rgba(png, 0, 0)).toEqual([255, 0, 0, 255]);
      expect(rgba(png, 9, 4)).toEqual([255, 0, 0, 255]);
      expect(rgba(png, 9, 0)).toEqual([0, 0, 0, 255]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
