import { closeSync, fsyncSync, openSync, promises as fsp, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { invalidArgument, VaeError } from '../errors';

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

/** Where a write of a file named by the user lands, and whether it can be atomic. */
export interface WriteTarget {
  /** The path with symlinks resolved: the link is kept, and its target gets the new contents. */
  path: string;
  /**
   * True for an existing FIFO, device or socket (`--out /dev/stdout`, a named pipe): renaming
   * a temp file over it would replace it, so it is written in place, as the shell's `>` does.
   */
  inPlace: boolean;
}

export function writeTarget(file: string): WriteTarget {
  try {
    const real = realpathSync(file);
    return { path: real, inPlace: !statSync(real).isFile() };
  } catch {
    return { path: pathToCreate(file), inPlace: false }; // does not exist (yet): created by the rename
  }
}

/**
 * Where a write creates `file`, which does not exist: the file itself, or when it is a symlink
 * to a missing file, that file (through any further links), as the shell's `>` creates it;
 * renaming over the link would replace it. A link loop is left to the rename.
 */
function pathToCreate(file: string): string {
  let current = file;
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    try {
      link = readlinkSync(current);
    } catch {
      return current; // not a link
    }
    const dir = path.dirname(current);
    let realDir = dir;
    try {
      realDir = realpathSync(dir); // `..` in the link is taken from where the link really is
    } catch {
      // a missing directory: the write fails there and names the file
    }
    current = path.resolve(realDir, link);
  }
  return file;
}

/**
 * An output file being written chunk by chunk: a temp file beside the target, renamed into
 * place by commit(), or the target itself when it is a pipe or device (WriteTarget.inPlace).
 */
export class OutputFile {
  private constructor(readonly handle: fsp.FileHandle, private readonly target: WriteTarget, private readonly tmp: string | undefined) {}

  /**
   * Opens the output for `file`; `seekable` outputs (rewritten at an offset on close) refuse
   * pipes and devices with ERR_INVALID_ARGUMENT. Other failures are ERR_IO naming `file`.
   */
  static async open(file: string, options: { seekable?: boolean } = {}): Promise<OutputFile> {
    const target = writeTarget(file);
    if (target.inPlace && options.seekable) {
      throw invalidArgument('file', 'a regular file (this format is rewritten at its start when it closes, which a pipe or device cannot take)', file);
    }
    const tmp = target.inPlace ? undefined : tempPathFor(target.path);
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(tmp ?? target.path, tmp ? 'wx' : 'w');
      return new OutputFile(handle, target, tmp);
    } catch (err) {
      await handle?.close().catch(() => undefined);
      throw ioError('create', file, err);
    }
  }

  /** Flushes the file to disk, closes it and moves it into place. */
  async commit(): Promise<void> {
    if (this.tmp) await this.handle.sync(); // else a crash right after the rename can leave an empty file
    await this.handle.close();
    if (this.tmp) await fsp.rename(this.tmp, this.target.path);
  }

  /** Closes and removes the temp file, leaving the target as it was (best effort, never throws). */
  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    if (this.tmp) await fsp.rm(this.tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Writes `data` to `file` atomically and durably (OutputFile: temp file in the same directory,
 * fsync, rename; see WriteTarget for symlinks and pipes). Errors are ERR_IO naming `file`.
 */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const out = await OutputFile.open(file);
  try {
    await out.handle.writeFile(data);
    await out.commit();
  } catch (err) {
    await out.discard();
    throw ioError('write', file, err);
  }
}

/** writeFileAtomic, synchronously. */
export function writeFileAtomicSync(file: string, data: Uint8Array): void {
  const target = writeTarget(file);
  const tmp = target.inPlace ? undefined : tempPathFor(target.path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp ?? target.path, 'w');
    writeFileSync(fd, data);
    if (tmp) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (tmp) renameSync(tmp, target.path);
  } catch (err) {
    try {
      if (fd !== undefined) closeSync(fd);
      if (tmp) rmSync(tmp, { force: true });
    } catch {
      // the write's own error is the one to report
    }
    throw ioError('write', file, err);
  }
}

/** Copies `bytes` into a fresh, aligned ArrayBuffer (Buffers from the pool may be misaligned for typed arrays). */
export function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}
