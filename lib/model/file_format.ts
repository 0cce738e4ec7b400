/**
 * The .vae model file: one self-describing binary file.
 *
 *   offset  size  content
 *   0       8     magic "VAENODE\0"
 *   8       4     format version (uint32 LE), currently 1
 *   12      4     header length H (uint32 LE)
 *   16      H     header: UTF-8 JSON {library, version, config, parameterCount, optimizer: {step}, history}
 *   ...     pad   zero bytes up to a multiple of 4
 *   ...     4P    parameters, float32 LE (P = parameterCount; layer by layer, weight [in, out] then bias)
 *   ...     4P    Adam first moments m
 *   ...     4P    Adam second moments v
 *   ...     48    training RNG state (12 x uint32 LE)
 *   end-4   4     CRC-32 of every byte before it (uint32 LE)
 *
 * Saved with writeFileAtomic (lib/data/io.ts): a temp file in the same directory, flushed,
 * then renamed over the target, so readers never see a half-written model.
 */
import { promises as fsp, readFileSync } from 'fs';
import { crc32 } from 'zlib';
import { VaeError } from '../errors';
import type { EpochStats } from './fit';
import type { VaeConfig } from './types';
import { parameterCount, resolveConfig } from './config';
import { MAX_ADAM_STEP } from './optimizer_state';

export const MAGIC = Buffer.from('VAENODE\0', 'latin1');
export const FORMAT_VERSION = 1;
const RNG_WORDS = 12;

export interface ModelFileHeader {
  library: string;
  version: string;
  config: VaeConfig;
  parameterCount: number;
  optimizer: { step: number };
  history: EpochStats[];
  savedAt: string;
}

export interface ModelFileContents {
  header: ModelFileHeader;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  rngState: Uint32Array;
}

const align4 = (n: number) => (n + 3) & ~3;

export function encodeModelFile(contents: ModelFileContents): Buffer {
  const header = Buffer.from(JSON.stringify(contents.header), 'utf8');
  const P = contents.header.parameterCount;
  const headerEnd = align4(16 + header.length);
  const total = headerEnd + 3 * 4 * P + 4 * RNG_WORDS + 4;
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(FORMAT_VERSION, 8);
  out.writeUInt32LE(header.length, 12);
  header.copy(out, 16);
  let offset = headerEnd;
  for (const block of [contents.params, contents.m, contents.v, contents.rngState]) {
    const bytes = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    bytes.copy(out, offset);
    offset += bytes.length;
  }
  out.writeUInt32LE(crc32(out.subarray(0, offset)), offset);
  return out;
}

function formatError(file: string, what: string): VaeError {
  return new VaeError('ERR_FILE_FORMAT', `${file} is not a valid vae-node model file: ${what}`);
}

function floatsAt(buf: Buffer, offset: number, count: number): Float32Array {
  // Copy into a fresh, aligned array (the file's bytes may sit at any offset).
  const out = new Float32Array(count);
  Buffer.from(out.buffer).set(buf.subarray(offset, offset + 4 * count));
  return out;
}

export function decodeModelFile(buf: Buffer, file: string): ModelFileContents {
  if (buf.length < 20) throw formatError(file, `it is ${buf.length} bytes long, too short for a header`);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw formatError(file, 'bad magic (expected "VAENODE")');
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw formatError(file, `format version ${version} is not supported (this vae-node reads version ${FORMAT_VERSION})`);
  const stored = buf.readUInt32LE(buf.length - 4);
  const actual = crc32(buf.subarray(0, buf.length - 4));
  if (stored !== actual) throw formatError(file, `checksum mismatch (the file is truncated or corrupted): stored ${stored.toString(16)}, computed ${actual.toString(16)}`);
  const headerLength = buf.readUInt32LE(12);
  if (16 + headerLength > buf.length - 4) throw formatError(file, 'header length runs past the end of the file');
  let header: ModelFileHeader;
  try {
    header = JSON.parse(buf.subarray(16, 16 + headerLength).toString('utf8'));
  } catch {
    throw formatError(file, 'the header is not valid JSON');
  }
  let config: VaeConfig;
  try {
    config = resolveConfig({ ...header.config }).config;
  } catch (err) {
    throw formatError(file, `the header's config is invalid: ${(err as Error).message}`);
  }
  const P = parameterCount(config);
  if (header.parameterCount !== P) throw formatError(file, `header says ${header.parameterCount} parameters but the config needs ${P}`);
  const start = align4(16 + headerLength);
  const expected = start + 3 * 4 * P + 4 * RNG_WORDS + 4;
  if (buf.length !== expected) throw formatError(file, `expected ${expected} bytes for ${P} parameters, found ${buf.length}`);
  const params = floatsAt(buf, start, P);
  const m = floatsAt(buf, start + 4 * P, P);
  const v = floatsAt(buf, start + 8 * P, P);
  const rngState = new Uint32Array(RNG_WORDS);
  Buffer.from(rngState.buffer).set(buf.subarray(start + 12 * P, start + 12 * P + 4 * RNG_WORDS));
  const step = header.optimizer?.step;
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 0 || step > MAX_ADAM_STEP) throw formatError(file, 'the optimizer step is missing or invalid');
  return { header: { ...header, config }, params, m, v, rngState };
}

export async function readModelFile(file: string): Promise<ModelFileContents> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    throw new VaeError('ERR_IO', `Cannot read model file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return decodeModelFile(buf, file);
}

export function readModelFileSync(file: string): ModelFileContents {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new VaeError('ERR_IO', `Cannot read model file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return decodeModelFile(buf, file);
}
