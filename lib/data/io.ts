import { promises as fsp } from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { VaeError } from '../errors';

/** Wraps a Node fs error as ERR_IO naming the file and the operation, keeping the original as `cause`. */
export function ioError(op: string, file: string, err: unknown): VaeError {
  if (err instanceof VaeError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  // Node's fs messages already start with their code ("ENOENT: no such file ..."): not twice.
  const prefix = code && !msg.startsWith(code) ? code + ' ' : '';
  return new VaeError('ERR_IO', `Cannot ${op} ${JSON.stringify(file)}: ${prefix}${msg}`, { cause: err });
}

/** Error for malformed content, always naming the file so users know which input is bad. */
export function formatError(file: string, problem: string, cause?: unknown): VaeError {
  return new VaeError('ERR_FILE_FORMAT', `${JSON.stringify(file)}: ${problem}`, cause === undefined ? undefined : { cause });
}

/** fs.readFile with ERR_IO errors that name the file. */
export async function readFileChecked(file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    throw ioError('read', file, err);
  }
}

/**
 * A sibling temp path for `file`. Writing there and renaming into place means readers never
 * observe a half-written file, and a crash leaves the previous version intact.
 */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes `data` to `file` atomically (temp file in the same directory + rename). */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError('write', file, err);
  }
}

/** Copies `bytes` into a fresh, aligned ArrayBuffer (Buffers from the pool may be misaligned for typed arrays). */
export function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}
