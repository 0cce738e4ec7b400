/**
 * A minimal RGB raster and PNG encoding via pngjs, shared by the figure modules. Deliberately
 * tiny: figures are drawn pixel by pixel, so no canvas/native graphics dependency is needed.
 */
import { PNG } from 'pngjs';
import { invalidArgument } from '../errors';
import { writeFileAtomic } from '../data/io';

export type Rgb = readonly [number, number, number];

/** An 8-bit RGB raster, row-major, 3 bytes per pixel. */
export interface Canvas {
  width: number;
  height: number;
  data: Uint8Array;
}

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];

/** Validates a figure dimension, naming the option in the error. */
export function checkSize(name: string, v: unknown, max = 1 << 14): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw invalidArgument(name, `an integer in [1, ${max}]`, v);
  return v;
}

/** A canvas filled with `background`. */
export function createCanvas(width: number, height: number, background: Rgb = WHITE): Canvas {
  checkSize('width', width);
  checkSize('height', height);
  const c = { width, height, data: new Uint8Array(width * height * 3) };
  fillRect(c, 0, 0, width, height, background);
  return c;
}

/** Sets one pixel; coordinates outside the canvas are ignored so callers need not clip. */
export function setPixel(c: Canvas, x: number, y: number, color: Rgb): void {
  x = Math.round(x);
  y = Math.round(y);
  if (x < 0 || y < 0 || x >= c.width || y >= c.height) return;
  const i = (y * c.width + x) * 3;
  c.data[i] = color[0];
  c.data[i + 1] = color[1];
  c.data[i + 2] = color[2];
}

/** Blends `color` over a pixel with opacity `alpha` in [0, 1] (lets dense scatter regions show density). */
export function blendPixel(c: Canvas, x: number, y: number, color: Rgb, alpha: number): void {
  x = Math.round(x);
  y = Math.round(y);
  if (x < 0 || y < 0 || x >= c.width || y >= c.height) return;
  const i = (y * c.width + x) * 3;
  for (let k = 0; k < 3; k++) c.data[i + k] = Math.round(c.data[i + k] * (1 - alpha) + color[k] * alpha);
}

/** Fills the rectangle [x, x + w) x [y, y + h), clipped to the canvas. */
export function fillRect(c: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  const x0 = Math.max(0, Math.round(x)), y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(c.width, Math.round(x + w)), y1 = Math.min(c.height, Math.round(y + h));
  const [r, g, b] = color;
  const d = c.data;
  // Plain index writes: TypedArray.set(array) per pixel is an order of magnitude slower.
  for (let yy = y0; yy < y1; yy++) {
    for (let i = (yy * c.width + x0) * 3, end = (yy * c.width + x1) * 3; i < end; i += 3) { d[i] = r; d[i + 1] = g; d[i + 2] = b; }
  }
}

/** Outlines the rectangle [x, x + w) x [y, y + h) with 1-pixel lines. */
export function strokeRect(c: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  fillRect(c, x, y, w, 1, color);
  fillRect(c, x, y + h - 1, w, 1, color);
  fillRect(c, x, y, 1, h, color);
  fillRect(c, x + w - 1, y, 1, h, color);
}

/** Bresenham line from (x0, y0) to (x1, y1); `thickness` > 1 stamps a square brush. */
export function drawLine(c: Canvas, x0: number, y0: number, x1: number, y1: number, color: Rgb, thickness = 1): void {
  x0 = Math.round(x0); y0 = Math.round(y0); x1 = Math.round(x1); y1 = Math.round(y1);
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
  const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  const r0 = -Math.floor((thickness - 1) / 2), r1 = r0 + thickness;
  let err = dx + dy;
  for (;;) {
    if (thickness <= 1) setPixel(c, x0, y0, color);
    else fillRect(c, x0 + r0, y0 + r0, r1 - r0, r1 - r0, color);
    if (x0 === x1 && y0 === y1) break;
    const e2 = 2 * err;
    if (e2 >= dy) { err += dy; x0 += sx; }
    if (e2 <= dx) { err += dx; y0 += sy; }
  }
}

/** Grey level in [0, 1] (clamped; NaN -> 0) to a byte. */
export function toByte(v: number): number {
  return v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
}

/** True when every pixel has r = g = b, so the PNG can be stored as 1-channel greyscale. */
export function isGrey(c: Canvas): boolean {
  const d = c.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/** Encodes a canvas as PNG: greyscale (colour type 0) when `grey`, else RGB (colour type 2). */
export function encodePng(c: Canvas, options: { grey?: boolean } = {}): Buffer {
  let data: Buffer;
  let colorType: 0 | 2;
  if (options.grey) {
    data = Buffer.alloc(c.width * c.height);
    for (let i = 0; i < data.length; i++) data[i] = c.data[i * 3];
    colorType = 0;
  } else {
    data = Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength);
    colorType = 2;
  }
  // pngjs passes data through untouched when input and output colour types match (8-bit).
  // Paeth filtering compresses figures about as well as pngjs's adaptive choice at a fraction of the cost.
  const image = { width: c.width, height: c.height, data } as unknown as PNG;
  return PNG.sync.write(image, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8, filterType: 4 });
}

/** Writes PNG bytes atomically (temp file + rename), so viewers never open a half-written image. */
export async function writePng(file: string, png: Uint8Array): Promise<void> {
  if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a non-empty path string', file);
  await writeFileAtomic(file, png);
}
