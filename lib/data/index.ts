/** Data loading and saving: Matrix, IDX (MNIST), NumPy .npy (whole-file and streaming), CSV, and the embedded Fashion-MNIST. */
export * from './matrix';
export * from './idx';
export * from './npy';
export * from './csv';
export * from './load';
