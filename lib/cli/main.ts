#!/usr/bin/env node
/**
 * The `vae` command: a thin layer of argument parsing and printing over the library.
 * Errors print one line `vae: <message>` (stack traces only with --verbose); usage errors exit 2.
 */
import { Command } from 'commander';
import { libraryVersion } from '../version';
import { EXIT, oneLine, reportError } from './errors';
import { registerTrain } from './train';
import { registerEval } from './eval';
import { registerEncode } from './encode';
import { registerSample } from './sample';
import { registerReconstruct } from './reconstruct';
import { registerExport } from './export';
import { registerInfo } from './info';

function buildProgram(): Command {
  const program = new Command('vae')
    .description('Variational auto-encoders trained natively on CPU: train, evaluate, encode, sample, export to ONNX')
    .version(libraryVersion(), '-V, --version')
    .option('--verbose', 'print stack traces on errors')
    .showSuggestionAfterError(true)
    // Throw instead of process.exit so every exit goes through one place (and usage errors exit 2).
    // Set before the subcommands are added so they inherit it and the error output.
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`vae: ${oneLine(str.replace(/^error:\s*/, ''))}\n`) });
  registerTrain(program);
  registerEval(program);
  registerEncode(program);
  registerSample(program);
  registerReconstruct(program);
  registerExport(program);
  registerInfo(program);
  return program;
}

/**
 * A reader that goes away (`vae train | head -2`) closes stdout or stderr, and the next write
 * fails with EPIPE as an 'error' event, which would end the process with a stack trace before
 * the model is saved. The command carries on without that stream; any other failure of an
 * output stream makes the exit code non-zero.
 */
function carryOnWithoutClosedOutputs(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') process.exitCode = EXIT.FAILURE;
    });
  }
}

async function main(): Promise<void> {
  carryOnWithoutClosedOutputs();
  // Read from argv, not the parsed options: it must also work when parsing itself fails.
  const verbose = process.argv.includes('--verbose');
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err, verbose);
  }
}

void main();
