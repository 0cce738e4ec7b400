export { VAE } from './model/vae';
export type { Input, Encoding, Evaluation, OptimizerState } from './model/vae';
export type { VaeOptions } from './model/config';
export type { FitOptions, EpochStats, BatchStats } from './model/fit';
export { FitAbortedError } from './model/fit';
export type { Activation, Likelihood, VaeConfig, VaeWeights, DenseWeights } from './model/types';
export { VaeError } from './errors';
export type { BadValue, BadValueFault, VaeErrorCode } from './errors';
export type { Matrix } from './data/matrix';
