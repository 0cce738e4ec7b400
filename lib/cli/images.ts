/** The pictures the CLI writes, as thin wrappers over lib/image that know the model's image shape. */
import { VAE } from '../model/vae';
import type { EpochStats } from '../model/fit';
import { Matrix, sliceRows } from '../data';
import { imageGrid, latentManifold, latentScatter, reconstructionGrid, trainingCurves, writePng } from '../image';
import type { Labels } from '../data';

/** Integer upscaling of 28 x 28 tiles so they are visible on modern screens. */
export const ZOOM = 2;

/** Side of square images of `inputDim` pixels, or undefined when inputDim is not a perfect square. */
export function imageSide(inputDim: number): number | undefined {
  const side = Math.round(Math.sqrt(inputDim));
  return side * side === inputDim ? side : undefined;
}

/** Like imageSide, but fails with a message saying why the picture cannot be drawn. */
export function requireImageSide(inputDim: number): number {
  const side = imageSide(inputDim);
  if (side === undefined) {
    throw new Error(`cannot draw pictures for inputDim ${inputDim}: it is not a perfect square, so the image shape is unknown (pictures assume square greyscale images such as 28 x 28 = 784)`);
  }
  return side;
}

/** Originals above their reconstructions (decoded from the posterior mean). */
export async function writeReconstructions(vae: VAE, x: Matrix, n: number, file: string): Promise<number> {
  const side = requireImageSide(vae.config.inputDim);
  const m = sliceRows(x, 0, n);
  const recon = await vae.reconstructAsync(m);
  await writePng(file, reconstructionGrid(m.data, recon, m.rows, side, side, { scale: ZOOM }));
  return m.rows;
}

/** n decoded prior draws from `seed` on a near-square grid. */
export async function writeSamples(vae: VAE, n: number, seed: number, file: string): Promise<void> {
  const side = requireImageSide(vae.config.inputDim);
  await writePng(file, imageGrid(vae.sample(n, { seed }), n, side, side, { scale: ZOOM }));
}

/** Loss and validation loss per epoch. */
export async function writeCurves(history: readonly EpochStats[], file: string): Promise<void> {
  await writePng(file, trainingCurves(history, { title: 'NEGATIVE ELBO PER SAMPLE' }));
}

/** The decoded 2-D latent grid (only meaningful for latentDim 2). */
export async function writeManifold(vae: VAE, file: string): Promise<void> {
  const side = requireImageSide(vae.config.inputDim);
  const png = latentManifold((z) => vae.decode(z), { gridSize: 20, latentDim: vae.config.latentDim, h: side, w: side });
  await writePng(file, png);
}

/** Posterior means of `x` (latentDim 2), coloured by label when labels are known. */
export async function writeScatter(vae: VAE, x: Matrix, labels: Labels | undefined, classNames: readonly string[] | undefined, file: string): Promise<void> {
  const means = await vae.encodeMeanAsync(x);
  await writePng(file, latentScatter(means, labels, { classNames }));
}
