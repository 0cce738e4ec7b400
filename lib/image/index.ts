/** PNG figures: image grids, reconstructions, the 2-D latent manifold, latent scatter plots and training curves. */
export * from './png';
export * from './grid';
export * from './manifold';
export * from './scatter';
export * from './curves';
export { drawText, textWidth } from './font';
