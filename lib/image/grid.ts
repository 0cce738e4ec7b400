/** Tiled image grids: samples, data previews and original-vs-reconstruction comparisons. */
import { invalidArgument } from '../errors';
import { Canvas, Rgb, checkSize, createCanvas, encodePng, toByte } from './png';
import { drawText, GLYPH_H, textWidth } from './font';

export interface GridOptions {
  /** Tiles per row (default: ceil(sqrt(count)), a near-square grid). */
  cols?: number;
  /** Pixels between tiles and around the border, before scaling (default 2). */
  pad?: number;
  /** Integer nearest-neighbour upscaling so 28 x 28 tiles are visible (default 1). */
  scale?: number;
  /** Grey level of the padding in [0, 1] (default 0.5, visible against both black and white images). */
  padValue?: number;
  /** 1 (greyscale, default) or 3 (RGB, interleaved per pixel). */
  channels?: 1 | 3;
}

function checkImages(name: string, images: unknown, count: number, size: number): Float32Array {
  if (!(images instanceof Float32Array) || images.length < count * size) {
    throw invalidArgument(name, `a Float32Array of at least ${count} x ${size} values (count x height x width x channels)`, images);
  }
  return images;
}

function checkPad(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 256) throw invalidArgument(name, 'an integer in [0, 256]', v);
  return v;
}

/**
 * Draws image `index` of a flat batch at (x0, y0), each source pixel as a scale x scale block.
 * Values are clamped to [0, 1].
 */
export function drawTile(c: Canvas, images: Float32Array, index: number, h: number, w: number, channels: 1 | 3, x0: number, y0: number, scale: number): void {
  const base = index * h * w * channels;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = base + (y * w + x) * channels;
      const r = toByte(images[p]);
      const g = channels === 3 ? toByte(images[p + 1]) : r;
      const b = channels === 3 ? toByte(images[p + 2]) : r;
      for (let sy = 0; sy < scale; sy++) {
        let o = ((y0 + y * scale + sy) * c.width + x0 + x * scale) * 3;
        for (let sx = 0; sx < scale; sx++, o += 3) { c.data[o] = r; c.data[o + 1] = g; c.data[o + 2] = b; }
      }
    }
  }
}

/** Renders the grid to a canvas (see imageGrid); exposed for composing larger figures. */
export function imageGridCanvas(images: Float32Array, count: number, height: number, width: number, options: GridOptions = {}): Canvas {
  checkSize('count', count, 1 << 20);
  checkSize('height', height, 4096);
  checkSize('width', width, 4096);
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 3) throw invalidArgument('options.channels', '1 or 3', channels);
  checkImages('images', images, count, height * width * channels);
  const cols = checkSize('options.cols', options.cols ?? Math.ceil(Math.sqrt(count)), 4096);
  const pad = checkPad('options.pad', options.pad ?? 2);
  const scale = checkSize('options.scale', options.scale ?? 1, 64);
  const pv = toByte(options.padValue ?? 0.5);
  const rows = Math.ceil(count / cols);
  const tw = width * scale, th = height * scale, p = pad * scale;
  const c = createCanvas(cols * (tw + p) + p, rows * (th + p) + p, [pv, pv, pv]);
  for (let i = 0; i < count; i++) {
    drawTile(c, images, i, height, width, channels, p + (i % cols) * (tw + p), p + Math.floor(i / cols) * (th + p), scale);
  }
  return c;
}

/**
 * A PNG of `count` images of height x width laid out row by row. Greyscale input gives a
 * 1-channel PNG (a third of the size of RGB); values are clamped to [0, 1].
 */
export function imageGrid(images: Float32Array, count: number, height: number, width: number, options: GridOptions = {}): Buffer {
  return encodePng(imageGridCanvas(images, count, height, width, options), { grey: (options.channels ?? 1) === 1 });
}

const BACKGROUND: Rgb = [40, 40, 40];
const ORIGINAL_COLOR: Rgb = [110, 190, 255];
const RECON_COLOR: Rgb = [255, 165, 60];

/**
 * Originals beside their reconstructions, as an RGB PNG: bands of `cols` images where a row of
 * originals (labelled "ORIG" in blue) sits directly above the row of their reconstructions
 * ("RECON" in orange); bands are separated by a wider gap so each pair reads as a unit.
 */
export function reconstructionGrid(
  originals: Float32Array, reconstructions: Float32Array, n: number, h: number, w: number,
  options: { cols?: number; pad?: number; scale?: number; labels?: boolean } = {},
): Buffer {
  checkSize('n', n, 1 << 16);
  checkSize('h', h, 4096);
  checkSize('w', w, 4096);
  checkImages('originals', originals, n, h * w);
  checkImages('reconstructions', reconstructions, n, h * w);
  const cols = checkSize('options.cols', options.cols ?? Math.min(n, 10), 4096);
  const pad = checkPad('options.pad', options.pad ?? 2);
  const scale = checkSize('options.scale', options.scale ?? 1, 64);
  const labels = options.labels ?? true;
  const textScale = Math.max(1, Math.floor((h * scale) / 28));
  const margin = labels ? textWidth('RECON', textScale) + 2 * pad * scale + 4 : 0;
  const tw = w * scale, th = h * scale, p = pad * scale;
  const bands = Math.ceil(n / cols);
  const bandH = 2 * th + p;
  const gap = Math.max(3 * p, 6);
  const c = createCanvas(margin + cols * (tw + p) + p, bands * bandH + (bands - 1) * gap + 2 * p, BACKGROUND);
  for (let b = 0; b < bands; b++) {
    const y = p + b * (bandH + gap);
    if (labels) {
      const ty = Math.round((th - GLYPH_H * textScale) / 2);
      drawText(c, p + 2, y + ty, 'ORIG', ORIGINAL_COLOR, textScale);
      drawText(c, p + 2, y + th + p + ty, 'RECON', RECON_COLOR, textScale);
    }
    for (let j = 0; j < cols && b * cols + j < n; j++) {
      const i = b * cols + j;
      const x = margin + p + j * (tw + p);
      drawTile(c, originals, i, h, w, 1, x, y, scale);
      drawTile(c, reconstructions, i, h, w, 1, x, y + th + p, scale);
    }
  }
  return encodePng(c);
}
