/** `vae export`: the model as standard ONNX graphs, one file per graph kind. */
import { Command } from 'commander';
import { ONNX_GRAPH_KINDS, OnnxGraphKind } from '../onnx/graph_kinds';
import { VaeError } from '../errors';
import { UsageError } from './errors';
import { loadModel } from './model';
import { choiceList, integer } from './parse';

interface ExportArgs {
  onnx: string;
  opset: number;
  graphs?: OnnxGraphKind[];
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .argument('<model>', 'model file written by vae train')
    .description('write ONNX models <dir>/<graph>.onnx (float32, dynamic batch), servable with onnxruntime')
    .requiredOption('--onnx <dir>', 'output directory (created if needed)')
    // The exporter validates the opset (17 or 18 today), so the list lives in one place.
    .option('--opset <n>', 'ONNX opset (17 or 18)', integer(1, 1000), 17)
    .option('--graphs <list>', `comma-separated graphs (default: all of ${ONNX_GRAPH_KINDS.join(',')})`, choiceList(ONNX_GRAPH_KINDS))
    .action(async (modelFile: string, args: ExportArgs) => {
      const vae = await loadModel(modelFile, undefined);
      const files = await vae.exportOnnxAll(args.onnx, { graphs: args.graphs, opset: args.opset }).catch((err: unknown) => {
        // Name the CLI option rather than the library's options.opset.
        if (err instanceof VaeError && err.code === 'ERR_INVALID_ARGUMENT' && err.message.includes('options.opset')) {
          throw new UsageError(`${err.message.replace('options.opset', '--opset')}`);
        }
        throw err;
      });
      process.stdout.write(files.map((f) => `wrote ${f}`).join('\n') + '\n');
    });
}
