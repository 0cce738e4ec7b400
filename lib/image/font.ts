/**
 * A 5 x 7 bitmap font (digits, A-Z, a few symbols) for axis labels and legends, so figures can
 * carry text without a font rasteriser. Lower case is drawn as upper case.
 */
import { Canvas, Rgb, fillRect } from './png';

/** Each glyph: 7 rows as 2 hex digits, bit 4 = leftmost column. */
const GLYPHS: Record<string, string> = {
  '0': '0e11131519110e', '1': '040c040404040e', '2': '0e11010204081f', '3': '1f02040201110e',
  '4': '02060a121f0202', '5': '1f101e0101110e', '6': '0608101e11110e', '7': '1f010204080808',
  '8': '0e11110e11110e', '9': '0e11110f01020c',
  A: '0e1111111f1111', B: '1e11111e11111e', C: '0e11101010110e', D: '1c12111111121c',
  E: '1f10101e10101f', F: '1f10101e101010', G: '0e11101711110f', H: '1111111f111111',
  I: '0e04040404040e', J: '0702020202120c', K: '11121418141211', L: '1010101010101f',
  M: '111b1515111111', N: '11111915131111', O: '0e11111111110e', P: '1e11111e101010',
  Q: '0e11111115120d', R: '1e11111e141211', S: '0f10100e01011e', T: '1f040404040404',
  U: '1111111111110e', V: '11111111110a04', W: '1111111515150a', X: '11110a040a1111',
  Y: '1111110a040404', Z: '1f01020408101f',
  '.': '00000000000c0c', ',': '00000000000c04', '-': '0000001f000000', '+': '0004041f040400',
  '/': '00010204081000', ':': '000c0c000c0c00', '(': '02040808080402', ')': '08040202020408',
  '_': '0000000000001f', '=': '00001f001f0000', '%': '18190204081303', ' ': '00000000000000',
};

export const GLYPH_W = 5;
export const GLYPH_H = 7;
/** Horizontal advance per character, in font pixels (glyph + 1 column of spacing). */
export const ADVANCE = GLYPH_W + 1;

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/** Draws `text` with its top-left corner at (x, y); unknown characters render as blanks. */
export function drawText(c: Canvas, x: number, y: number, text: string, color: Rgb, scale = 1): void {
  for (const ch of text) {
    const g = GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()];
    if (g) {
      for (let r = 0; r < GLYPH_H; r++) {
        const bits = parseInt(g.slice(2 * r, 2 * r + 2), 16);
        for (let col = 0; col < GLYPH_W; col++) {
          if (bits & (0x10 >> col)) fillRect(c, x + col * scale, y + r * scale, scale, scale, color);
        }
      }
    }
    x += ADVANCE * scale;
  }
}
