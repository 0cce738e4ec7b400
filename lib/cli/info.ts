/** `vae info`: what a model file holds: architecture, size and training history summary. */
import { promises as fsp } from 'fs';
import { Command } from 'commander';
import { loadModel } from './model';
import { grouped } from './progress';

interface InfoArgs {
  json?: boolean;
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .argument('<model>', 'model file written by vae train')
    .description('print the configuration, parameter count and training history summary')
    .option('--json', 'print JSON instead of a table')
    .action(async (modelFile: string, args: InfoArgs) => {
      const vae = await loadModel(modelFile, 1);
      const bytes = (await fsp.stat(modelFile)).size;
      const h = vae.history;
      const last = h[h.length - 1];
      const training = {
        epochs: h.length,
        lastLoss: last?.loss ?? null,
        lastValLoss: last?.valLoss ?? null,
        totalSeconds: h.reduce((s, e) => s + e.seconds, 0),
      };
      if (args.json) {
        process.stdout.write(JSON.stringify({ file: modelFile, bytes, config: vae.config, parameterCount: vae.parameterCount, training }, null, 2) + '\n');
        return;
      }
      const c = vae.config;
      const rows: Array<[string, string]> = [
        ['file', `${modelFile} (${grouped(bytes)} bytes)`],
        ['layers', [c.inputDim, ...c.encoderLayers, c.latentDim, ...c.decoderLayers, c.inputDim].join(' -> ')],
        ['latent dim', String(c.latentDim)],
        ['activation', c.activation],
        ['likelihood', c.likelihood],
        ['beta', String(c.beta)],
        ['seed', String(c.seed)],
        ['parameters', grouped(vae.parameterCount)],
        ['epochs trained', String(training.epochs)],
        ['last loss', training.lastLoss === null ? '-' : training.lastLoss.toFixed(4)],
        ['last val loss', training.lastValLoss === null ? '-' : training.lastValLoss.toFixed(4)],
        ['training time', `${training.totalSeconds.toFixed(1)} s`],
      ];
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(16)}${v}`).join('\n') + '\n');
    });
}
