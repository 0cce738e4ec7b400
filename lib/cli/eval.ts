/** `vae eval`: negative ELBO, reconstruction and KL per sample of a model on data. */
import { Command, Option } from 'commander';
import { DataArgs, addDataOptions, checkColumns, loadEvalSplit } from './data';
import { inFile } from './rows';
import { addThreadsOption, loadModel } from './model';
import { integer } from './parse';
import { grouped } from './progress';

interface EvalArgs extends DataArgs {
  json?: boolean;
  seed: number;
  threads?: number;
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .argument('<model>', 'model file written by vae train')
    .description('negative ELBO, reconstruction and KL per sample (one draw of z per row)');
  addDataOptions(cmd, 'data to evaluate: a file (all rows), an MNIST-style directory (its t10k split); default: the embedded held-out rows');
  addThreadsOption(cmd)
    .addOption(new Option('--seed <n>', 'seed of the z draws').argParser(integer(0)).default(0))
    .option('--json', 'print JSON instead of a table')
    .action(async (modelFile: string, args: EvalArgs) => {
      const vae = await loadModel(modelFile, args.threads);
      const { source, split } = await loadEvalSplit(args);
      checkColumns(split.x, vae.config.inputDim, source);
      const r = await vae.evaluateAsync(split.x, { seed: args.seed }).catch((err) => {
        throw inFile(err, 'x', split.origin);
      });
      if (args.json) {
        process.stdout.write(JSON.stringify({ model: modelFile, data: source, rows: split.x.rows, loss: r.loss, reconstruction: r.reconstruction, kl: r.kl }) + '\n');
        return;
      }
      const rows: Array<[string, string]> = [
        ['data', `${source}, ${grouped(split.x.rows)} rows`],
        ['-ELBO', r.loss.toFixed(4)],
        ['reconstruction', r.reconstruction.toFixed(4)],
        ['KL', r.kl.toFixed(4)],
      ];
      const unit = vae.config.likelihood === 'bernoulli' ? 'nats per sample' : 'per sample, up to a constant';
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(16)}${v}`).join('\n') + `\n(${unit}; -ELBO = reconstruction + KL)\n`);
    });
}
