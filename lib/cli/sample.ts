/** `vae sample`: a PNG grid of images decoded from prior draws. */
import { Command } from 'commander';
import { randomInt } from 'crypto';
import { addThreadsOption, loadModel } from './model';
import { fileWithExtension, integer } from './parse';
import { requireImageSide, writeSamples } from './images';

interface SampleArgs {
  n: number;
  out: string;
  seed?: number;
  threads?: number;
}

export function registerSample(program: Command): void {
  const cmd = program
    .command('sample')
    .argument('<model>', 'model file written by vae train')
    .description('decode n draws from the prior into a PNG grid (square images, e.g. 28 x 28 for 784 inputs)')
    .option('--n <count>', 'number of images', integer(1, 1 << 16), 64)
    .option('--out <file>', 'output PNG', fileWithExtension('.png'), 'samples.png')
    .option('--seed <n>', 'seed of the draws (default: random, printed)', integer(0));
  addThreadsOption(cmd).action(async (modelFile: string, args: SampleArgs) => {
    const vae = await loadModel(modelFile, args.threads);
    requireImageSide(vae.config.inputDim);
    // A printed seed makes a lucky random grid reproducible.
    const seed = args.seed ?? randomInt(0, 2 ** 47);
    await writeSamples(vae, args.n, seed, args.out);
    process.stdout.write(`wrote ${args.n} samples (seed ${seed}) to ${args.out}\n`);
  });
}
