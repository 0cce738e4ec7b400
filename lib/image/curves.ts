/** Training curves: loss (and validation loss) per epoch, to spot divergence and over-fitting at a glance. */
import { invalidArgument } from '../errors';
import { Canvas, Rgb, checkSize, createCanvas, drawLine, encodePng, fillRect } from './png';
import { drawText, GLYPH_H, textWidth } from './font';
import { PlotArea, drawAxes, formatTicks, niceStep, niceTicks, px, py } from './axes';

export interface HistoryEntry {
  epoch: number;
  loss: number;
  valLoss?: number;
}

export interface CurvesOptions {
  width?: number;
  height?: number;
  /** Optional title drawn above the plot. */
  title?: string;
}

const TRAIN: Rgb = [31, 119, 180];
const VAL: Rgb = [255, 127, 14];
const TEXT: Rgb = [40, 40, 40];

function series(c: Canvas, a: PlotArea, pts: [number, number][], color: Rgb): void {
  for (let i = 1; i < pts.length; i++) drawLine(c, px(a, pts[i - 1][0]), py(a, pts[i - 1][1]), px(a, pts[i][0]), py(a, pts[i][1]), color, 2);
  // Markers only when sparse enough to tell apart; a dense curve is clearer without them.
  if (pts.length <= 60) for (const [x, y] of pts) fillRect(c, px(a, x) - 2, py(a, y) - 2, 5, 5, color);
}

/**
 * An RGB PNG line plot of `loss` (blue) and, when present, `valLoss` (orange) against `epoch`,
 * with nice-number ticks and a legend. Non-finite losses are skipped, not plotted as spikes.
 */
export function trainingCurves(history: readonly HistoryEntry[], options: CurvesOptions = {}): Buffer {
  if (!Array.isArray(history) || history.length === 0) throw invalidArgument('history', 'a non-empty Array of { epoch, loss, valLoss? }', history);
  history.forEach((h, i) => {
    if (h === null || typeof h !== 'object' || !Number.isFinite(h.epoch) || typeof h.loss !== 'number') {
      throw invalidArgument(`history[${i}]`, 'an object { epoch: number, loss: number, valLoss?: number }', h);
    }
  });
  const width = checkSize('options.width', options.width ?? 640, 8192);
  const height = checkSize('options.height', options.height ?? 400, 8192);
  const train = history.filter((h) => Number.isFinite(h.loss)).map((h): [number, number] => [h.epoch, h.loss]);
  const val = history.filter((h) => typeof h.valLoss === 'number' && Number.isFinite(h.valLoss)).map((h): [number, number] => [h.epoch, h.valLoss as number]);
  const all = [...train, ...val];
  if (all.length === 0) throw invalidArgument('history', 'at least one finite loss', history);

  let xMin = Math.min(...history.map((h) => h.epoch)), xMax = Math.max(...history.map((h) => h.epoch));
  if (xMax === xMin) { xMin -= 1; xMax += 1; }
  let yMin = Math.min(...all.map((p) => p[1])), yMax = Math.max(...all.map((p) => p[1]));
  const span = yMax - yMin || Math.abs(yMax) * 0.1 || 1;
  yMin -= span * 0.05;
  yMax += span * 0.05;

  const c = createCanvas(width, height);
  const yTarget = Math.max(2, Math.floor(height / 60));
  const yTicks = niceTicks(yMin, yMax, yTarget);
  const yStep = niceStep(yMin, yMax, yTarget);
  const xTarget = Math.max(2, Math.floor(width / 80));
  const xStep = Math.max(1, niceStep(xMin, xMax, xTarget)); // epochs are integers
  const xTicks = niceTicks(xMin, xMax, xTarget).filter((t) => Number.isInteger(t));
  const labelW = Math.max(...formatTicks(yTicks, yStep).map((t) => textWidth(t)));
  const left = Math.min(labelW + 14, Math.floor(width / 3));
  const top = options.title ? 26 : 14;
  const area: PlotArea = { left, top, width: width - left - 14, height: height - top - 38, xMin, xMax, yMin, yMax };
  if (area.width < 20 || area.height < 20) throw invalidArgument('options.width/height', 'a canvas of at least about 120 x 100 pixels', `${width} x ${height}`);
  drawAxes(c, area, xTicks, yTicks, xStep, yStep);
  drawText(c, area.left + Math.floor((area.width - textWidth('EPOCH')) / 2), height - GLYPH_H - 4, 'EPOCH', TEXT);
  if (options.title) drawText(c, area.left, 8, options.title, TEXT);

  series(c, area, train, TRAIN);
  if (val.length) series(c, area, val, VAL);

  const entries: [string, Rgb][] = val.length ? [['TRAIN LOSS', TRAIN], ['VAL LOSS', VAL]] : [['LOSS', TRAIN]];
  const boxW = Math.max(...entries.map(([s]) => textWidth(s))) + 30;
  const bx = area.left + area.width - boxW - 8, by = area.top + 8;
  fillRect(c, bx, by, boxW, entries.length * 14 + 8, [255, 255, 255]);
  entries.forEach(([s, color], k) => {
    fillRect(c, bx + 6, by + 7 + k * 14, 14, 3, color);
    drawText(c, bx + 24, by + 5 + k * 14, s, TEXT);
  });
  return encodePng(c);
}
