/** Axis helpers shared by the scatter and curve plots: "nice" tick values, labels and a framed plot area. */
import { Canvas, Rgb, drawLine, strokeRect } from './png';
import { drawText, GLYPH_H, textWidth } from './font';

/** A plot area in canvas pixels and the data range it maps. */
export interface PlotArea {
  left: number;
  top: number;
  width: number;
  height: number;
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
}

/** Data x to canvas column. */
export function px(a: PlotArea, x: number): number {
  return a.left + ((x - a.xMin) / (a.xMax - a.xMin || 1)) * (a.width - 1);
}

/** Data y to canvas row (y grows upwards). */
export function py(a: PlotArea, y: number): number {
  return a.top + a.height - 1 - ((y - a.yMin) / (a.yMax - a.yMin || 1)) * (a.height - 1);
}

/** Tick step of 1, 2 or 5 x 10^k giving about `target` ticks over [min, max] (Heckbert's nice numbers). */
export function niceStep(min: number, max: number, target = 5): number {
  const raw = (max - min) / Math.max(1, target);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/** Multiples of the nice step inside [min, max]. */
export function niceTicks(min: number, max: number, target = 5): number[] {
  const step = niceStep(min, max, target);
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/**
 * Compact tick labels for one axis: as many decimals as the step needs, or exponent form for all
 * ticks when the axis is very large or very small (mixing notations on one axis reads badly).
 */
export function formatTicks(ticks: number[], step: number): string[] {
  const big = Math.max(...ticks.map(Math.abs));
  const exp = big >= 1e6 || (big > 0 && big < 1e-3);
  return ticks.map((v) => {
    if (v === 0) return '0';
    if (!exp) return v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));
    const digits = Math.floor(Math.log10(Math.abs(v)) + 1e-9) - Math.floor(Math.log10(step) + 1e-9);
    return v.toExponential(Math.max(0, Math.min(4, digits))).replace('e+', 'e');
  });
}

const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [228, 228, 228];

/** Draws light grid lines, the frame, tick marks and tick labels for both axes. */
export function drawAxes(c: Canvas, a: PlotArea, xTicks: number[], yTicks: number[], xStep: number, yStep: number): void {
  for (const t of xTicks) drawLine(c, px(a, t), a.top, px(a, t), a.top + a.height - 1, GRID);
  for (const t of yTicks) drawLine(c, a.left, py(a, t), a.left + a.width - 1, py(a, t), GRID);
  strokeRect(c, a.left, a.top, a.width, a.height, AXIS);
  const bottom = a.top + a.height;
  const xLabels = formatTicks(xTicks, xStep);
  const yLabels = formatTicks(yTicks, yStep);
  for (const [k, t] of xTicks.entries()) {
    const x = Math.round(px(a, t));
    drawLine(c, x, bottom, x, bottom + 3, AXIS);
    const s = xLabels[k];
    drawText(c, x - Math.floor(textWidth(s) / 2), bottom + 6, s, AXIS);
  }
  for (const [k, t] of yTicks.entries()) {
    const y = Math.round(py(a, t));
    drawLine(c, a.left - 4, y, a.left - 1, y, AXIS);
    const s = yLabels[k];
    drawText(c, a.left - 7 - textWidth(s), y - Math.floor(GLYPH_H / 2), s, AXIS);
  }
}
