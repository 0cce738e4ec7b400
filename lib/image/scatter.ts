/** Scatter plot of 2-D latent means coloured by class, the standard "did the VAE separate the classes" figure. */
import { invalidArgument } from '../errors';
import { Rgb, blendPixel, checkSize, createCanvas, encodePng, fillRect, strokeRect } from './png';
import { drawText, GLYPH_H, textWidth } from './font';
import { PlotArea, drawAxes, niceStep, niceTicks, px, py } from './axes';

/** Tableau 10: distinct hues that stay distinguishable for most colour-vision deficiencies. */
export const CLASS_COLORS: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

export interface ScatterOptions {
  /** Side of the square plot in pixels (default 600); a legend column is added on the right when labelled. */
  size?: number;
  /** Legend names indexed by label (e.g. FASHION_MNIST_CLASSES); defaults to the label numbers. */
  classNames?: readonly string[];
  /** Side of each point's square in pixels (default 2). */
  pointSize?: number;
  /** Opacity of each point (default 0.6) so dense regions look denser. */
  alpha?: number;
  /** Fixed axis ranges; by default the 0.5-99.5 percentile range of each axis plus a margin, so a few outliers do not squash the plot. */
  range?: { x: [number, number]; y: [number, number] };
}

function robustRange(values: Float32Array, stride: number, offset: number): [number, number] {
  const v = new Float64Array(values.length / stride);
  for (let i = 0; i < v.length; i++) v[i] = values[i * stride + offset];
  v.sort();
  const lo = v[Math.floor(0.005 * (v.length - 1))];
  const hi = v[Math.ceil(0.995 * (v.length - 1))];
  const m = Math.max((hi - lo) * 0.08, 1e-6);
  return [lo - m, hi + m];
}

/** A deterministic shuffle of draw order, so no class is always painted on top of the others. */
function drawOrder(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    const t = order[i]; order[i] = order[j]; order[j] = t;
  }
  return order;
}

/**
 * An RGB PNG of `means` (n x 2, row-major) coloured by `labels` (integers; colours cycle after 10),
 * with axes, ticks and a legend of the classes present.
 */
export function latentScatter(means: Float32Array, labels?: ArrayLike<number>, options: ScatterOptions = {}): Buffer {
  if (!(means instanceof Float32Array) || means.length === 0 || means.length % 2 !== 0) throw invalidArgument('means', 'a non-empty Float32Array of n x 2 values', means);
  const n = means.length / 2;
  if (labels !== undefined) {
    if (labels.length !== n) throw invalidArgument('labels', `one label per point (${n})`, labels);
    for (let i = 0; i < n; i++) if (!Number.isInteger(labels[i]) || labels[i] < 0) throw invalidArgument(`labels[${i}]`, 'a non-negative integer', labels[i]);
  }
  const size = checkSize('options.size', options.size ?? 600, 8192);
  const pointSize = checkSize('options.pointSize', options.pointSize ?? 2, 64);
  const alpha = options.alpha ?? 0.6;
  if (!(alpha > 0 && alpha <= 1)) throw invalidArgument('options.alpha', 'a number in (0, 1]', alpha);
  const [xMin, xMax] = options.range?.x ?? robustRange(means, 2, 0);
  const [yMin, yMax] = options.range?.y ?? robustRange(means, 2, 1);
  if (!(xMax > xMin && yMax > yMin)) throw invalidArgument('options.range', 'ranges [min, max] with max > min', options.range);

  const present = labels ? [...new Set(Array.from(labels))].sort((a, b) => a - b) : [];
  const names = present.map((l) => options.classNames?.[l] ?? String(l));
  const legendW = present.length ? Math.max(...names.map((s) => textWidth(s))) + 34 : 0;
  const c = createCanvas(size + legendW, size);
  const area: PlotArea = { left: 48, top: 10, width: size - 58, height: size - 34, xMin, xMax, yMin, yMax };
  const xStep = niceStep(xMin, xMax), yStep = niceStep(yMin, yMax);
  drawAxes(c, area, niceTicks(xMin, xMax), niceTicks(yMin, yMax), xStep, yStep);

  const half = Math.floor(pointSize / 2);
  for (const i of drawOrder(n)) {
    const x = means[2 * i], y = means[2 * i + 1];
    if (!(x >= xMin && x <= xMax && y >= yMin && y <= yMax)) continue; // clipped outliers and NaN
    const color = labels ? CLASS_COLORS[labels[i] % CLASS_COLORS.length] : CLASS_COLORS[0];
    const cx = Math.round(px(area, x)) - half, cy = Math.round(py(area, y)) - half;
    for (let dy = 0; dy < pointSize; dy++) for (let dx = 0; dx < pointSize; dx++) blendPixel(c, cx + dx, cy + dy, color, alpha);
  }

  present.forEach((label, k) => {
    const y = area.top + 4 + k * 16;
    const x = size + 6;
    fillRect(c, x, y, 10, 10, CLASS_COLORS[label % CLASS_COLORS.length]);
    strokeRect(c, x, y, 10, 10, [60, 60, 60]);
    drawText(c, x + 16, y + Math.floor((10 - GLYPH_H) / 2), names[k], [40, 40, 40]);
  });
  return encodePng(c);
}
