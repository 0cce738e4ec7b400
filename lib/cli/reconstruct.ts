/** `vae reconstruct`: a PNG of data rows above their reconstructions. */
import { Command } from 'commander';
import { DataArgs, addDataOptions, checkColumns, loadEvalSplit } from './data';
import { inFile } from './rows';
import { addThreadsOption, loadModel } from './model';
import { fileWithExtension, integer } from './parse';
import { requireImageSide, writeReconstructions } from './images';

interface ReconstructArgs extends DataArgs {
  n: number;
  out: string;
  threads?: number;
}

export function registerReconstruct(program: Command): void {
  const cmd = program
    .command('reconstruct')
    .argument('<model>', 'model file written by vae train')
    .description('draw the first n data rows above their reconstructions (decoded posterior means) into a PNG');
  addDataOptions(cmd, 'images: a file, an MNIST-style directory (its t10k split); default: the embedded held-out rows');
  addThreadsOption(cmd)
    .option('--n <count>', 'number of images', integer(1, 1 << 16), 32)
    .option('--out <file>', 'output PNG', fileWithExtension('.png'), 'reconstructions.png')
    .action(async (modelFile: string, args: ReconstructArgs) => {
      const vae = await loadModel(modelFile, args.threads);
      requireImageSide(vae.config.inputDim);
      const { source, split } = await loadEvalSplit(args);
      checkColumns(split.x, vae.config.inputDim, source);
      const n = await writeReconstructions(vae, split.x, args.n, args.out).catch((err) => {
        throw inFile(err, 'x', split.origin);
      });
      process.stdout.write(`wrote ${n} reconstructions of ${source} to ${args.out}\n`);
    });
}
