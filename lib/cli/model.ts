/** Loading the MODEL argument, shared by every command that reads a saved model. */
import { Command } from 'commander';
import { VAE } from '../model/vae';
import { integer } from './parse';

/** Adds --threads to a command that runs inference. */
export function addThreadsOption(cmd: Command): Command {
  return cmd.option('--threads <n>', 'native threads (default: all cores)', integer(1, 1024));
}

/** VAE.load with the CLI's --threads; its errors (ERR_IO, ERR_FILE_FORMAT) already name the file. */
export function loadModel(file: string, threads: number | undefined): Promise<VAE> {
  return VAE.load(file, threads === undefined ? {} : { threads });
}
