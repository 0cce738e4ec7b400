/**
 * The learned 2-D manifold figure of Kingma & Welling (2014): decode a regular grid of latent
 * points and tile the images. The grid is spaced by the Gaussian inverse CDF of
 * linspace(0.05, 0.95), so it covers the prior's mass evenly instead of wasting tiles on tails.
 */
import { invalidArgument } from '../errors';
import { checkSize, createCanvas, encodePng } from './png';
import { drawTile } from './grid';

/** Decodes n latent vectors (row-major, n x latentDim) to n images of h x w values in [0, 1]. */
export type DecodeFn = (z: Float32Array, n: number) => Float32Array;

export interface ManifoldOptions {
  /** Tiles per side (default 20). */
  gridSize?: number;
  /** 'gaussian' (default): Phi^-1 of linspace(0.05, 0.95); a number r: linspace(-r, r). */
  range?: 'gaussian' | number;
  h?: number;
  w?: number;
  /** Dimension of z (default 2); the two plotted dims vary, the others stay 0 (the prior mean). */
  latentDim?: number;
  /** Which two latent dims to plot (default [0, 1]): horizontal, vertical. */
  dims?: [number, number];
  /** Pixels between tiles (default 0, so the manifold reads as one continuous picture). */
  pad?: number;
  /** Integer upscaling of each tile (default 1). */
  scale?: number;
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw invalidArgument('p', 'a probability in (0, 1)', p);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** The latent values along one axis of the manifold, ascending. */
export function manifoldAxis(gridSize: number, range: 'gaussian' | number = 'gaussian'): number[] {
  checkSize('gridSize', gridSize, 256);
  const t = (i: number) => (gridSize === 1 ? 0.5 : i / (gridSize - 1));
  if (range === 'gaussian') {
    const q = Array.from({ length: gridSize }, (_, i) => normalQuantile(0.05 + 0.9 * t(i)));
    return q.map((v, i) => (v - q[gridSize - 1 - i]) / 2); // exactly symmetric about 0 despite rounding in 0.05 + 0.9t
  }
  if (typeof range !== 'number' || !(range > 0) || !Number.isFinite(range)) throw invalidArgument('options.range', "'gaussian' or a positive finite number", range);
  return Array.from({ length: gridSize }, (_, i) => -range + 2 * range * t(i));
}

/**
 * The gridSize^2 latent points in tile order (row-major from the top-left tile). Horizontal dim
 * increases left to right, vertical dim increases bottom to top, as on a plot.
 */
export function manifoldLatents(options: ManifoldOptions = {}): Float32Array {
  const n = options.gridSize ?? 20;
  const axis = manifoldAxis(n, options.range);
  const latentDim = checkSize('options.latentDim', options.latentDim ?? 2, 4096);
  const [dx, dy] = options.dims ?? [0, 1];
  for (const [k, v] of [['options.dims[0]', dx], ['options.dims[1]', dy]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= latentDim) throw invalidArgument(k, `a latent index in [0, ${latentDim - 1}]`, v);
  }
  if (dx === dy) throw invalidArgument('options.dims', 'two different latent indices', options.dims);
  const z = new Float32Array(n * n * latentDim);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const o = (r * n + c) * latentDim;
      z[o + dx] = axis[c];
      z[o + dy] = axis[n - 1 - r];
    }
  }
  return z;
}

/** Decodes the latent grid in one batch and returns the tiled greyscale PNG. */
export function latentManifold(decodeFn: DecodeFn, options: ManifoldOptions = {}): Buffer {
  if (typeof decodeFn !== 'function') throw invalidArgument('decodeFn', 'a function (z: Float32Array, n: number) => Float32Array', decodeFn);
  const n = options.gridSize ?? 20;
  const h = checkSize('options.h', options.h ?? 28, 4096);
  const w = checkSize('options.w', options.w ?? 28, 4096);
  const pad = options.pad ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad > 256) throw invalidArgument('options.pad', 'an integer in [0, 256]', pad);
  const scale = checkSize('options.scale', options.scale ?? 1, 64);
  const z = manifoldLatents(options);
  const count = n * n;
  const images = decodeFn(z, count);
  if (!(images instanceof Float32Array) || images.length !== count * h * w) {
    throw invalidArgument('the result of decodeFn', `a Float32Array of ${count} x ${h} x ${w} = ${count * h * w} values`, images);
  }
  const tw = w * scale, th = h * scale, p = pad * scale;
  const c = createCanvas(n * (tw + p) + p, n * (th + p) + p, [128, 128, 128]);
  for (let i = 0; i < count; i++) drawTile(c, images, i, h, w, 1, p + (i % n) * (tw + p), p + Math.floor(i / n) * (th + p), scale);
  return encodePng(c, { grey: true });
}
