import { spawnSync } from 'child_process';
import { promises as fsp, existsSync, mkdtempSync, rmSync } from 'fs';
import { Writable } from 'stream';
import { tmpdir } from 'os';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { VaeError } from '../lib/errors';
import { isMatrix, toMatrix } from '../lib/data/matrix';
import { encodeIdx, readIdx, readIdxImages, readIdxLabels, writeIdx, IdxArray } from '../lib/data/idx';
import { NpyRowWriter, openNpyRows, readNpy, readNpyMatrix, writeNpy, npyFloat32Header } from '../lib/data/npy';
import { CsvRowWriter, csvRowChunks, formatFloat32, readCsv, writeCsv } from '../lib/data/csv';
import { FASHION_MNIST_CLASSES, dataFileFormat, embeddedDataPath, loadEmbeddedFashionMnist, loadIdxDirectory, loadMatrix } from '../lib/data/load';
import { sameBits } from './helpers/buffers';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vae-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tmp = (name: string) => path.join(dir, name);

/** Runs `fn` and returns the VaeError it throws (failing the test if it does not). */
async function vaeError(fn: () => unknown): Promise<VaeError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VaeError);
    return err as VaeError;
  }
  throw new Error('expected a VaeError');
}

/** A hand-built .npy file: 'descr' and shape as given, v1 or v2 header padded to 64 bytes. */
function npyBytes(descr: string, shape: number[], data: Uint8Array, opts: { fortran?: boolean; version?: 1 | 2 } = {}): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': (${dims}), }`;
  const prefix = opts.version === 2 ? 12 : 10;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, opts.version ?? 1, 0]).copy(head);
  if (prefix === 10) head.writeUInt16LE(total - 10, 8);
  else head.writeUInt32LE(total - 12, 8);
  head.write(dict, prefix, 'latin1');
  head[total - 1] = 0x0a;
  return Buffer.concat([head, data]);
}

describe('matrix', () => {
  test('toMatrix accepts flat arrays and matrices and names the argument in errors', async () => {
    const m = toMatrix(new Float32Array(6), 3, 'x');
    expect([m.rows, m.cols]).toEqual([2, 3]);
    expect(isMatrix(m)).toBe(true);
    expect(toMatrix(m, 3, 'x')).toBe(m);
    const e = await vaeError(() => toMatrix(new Float32Array(7), 3, 'data'));
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(/^Expected .* for data but received a Float32Array of length 7$/);
    expect((await vaeError(() => toMatrix(new Float32Array(0), 3, 'data'))).message).toMatch(/non-empty/);
    expect((await vaeError(() => toMatrix(m, 4, 'x'))).message).toMatch(/for x\.cols/);
  });
});

describe('IDX', () => {
  const cases: IdxArray[] = [
    { dtype: 'uint8', dims: [3, 2, 2], data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 254, 255]) },
    { dtype: 'int8', dims: [4], data: Int8Array.from([-128, -1, 0, 127]) },
    { dtype: 'int16', dims: [2, 3], data: Int16Array.from([-32768, -2, 0, 1, 300, 32767]) },
    { dtype: 'int32', dims: [1, 1, 1, 3], data: Int32Array.from([-(2 ** 31), 7, 2 ** 31 - 1]) },
    { dtype: 'float32', dims: [2, 2], data: Float32Array.from([0.5, -1.25, 3.4e38, 1e-30]) },
    { dtype: 'float64', dims: [3], data: Float64Array.from([Math.PI, -0, 1e300]) },
  ];

  test.each(cases.map((c) => [c.dtype, c]))('round trips %s plain and gzip (detected by content)', async (_name, arr) => {
    for (const gzip of [false, true]) {
      const file = tmp(`rt-${arr.dtype}-${gzip}.idx`); // no .gz extension on purpose
      await writeIdx(file, arr, { gzip });
      const head = await fsp.readFile(file);
      expect(head[0] === 0x1f && head[1] === 0x8b).toBe(gzip);
      const back = await readIdx(file);
      expect(back.dtype).toBe(arr.dtype);
      expect(back.dims).toEqual(arr.dims);
      expect(Array.from(back.data)).toEqual(Array.from(arr.data));
    }
  });

  test('readIdxImages flattens trailing dims and scales uint8 to [0, 1]', async () => {
    const file = tmp('img.idx.gz');
    await writeIdx(file, cases[0], { gzip: true });
    const m = await readIdxImages(file);
    expect([m.rows, m.cols]).toEqual([3, 4]);
    expect(m.data[11]).toBe(1);
    expect(m.data[1]).toBeCloseTo(1 / 255, 7);
    expect((await readIdxImages(file, { scale: 1 })).data[11]).toBe(255);
    const labels = tmp('lab.idx');
    await writeIdx(labels, { dtype: 'uint8', dims: [3], data: Uint8Array.from([2, 0, 9]) });
    expect(Array.from(await readIdxLabels(labels))).toEqual([2, 0, 9]);
    expect((await vaeError(() => readIdxLabels(file))).message).toMatch(/1-D label file/);
  });

  test('embedded Fashion-MNIST test split has the documented shape and values', async () => {
    expect(existsSync(path.join(embeddedDataPath(), 't10k-images-idx3-ubyte.gz'))).toBe(true);
    const { x, labels } = await loadEmbeddedFashionMnist();
    expect([x.rows, x.cols, x.data.length]).toEqual([10000, 784, 10000 * 784]);
    let min = Infinity, max = -Infinity;
    for (const v of x.data) { if (v < min) min = v; if (v > max) max = v; }
    expect([min, max]).toEqual([0, 1]);
    expect(labels).toBeInstanceOf(Uint8Array);
    expect(labels.length).toBe(10000);
    const counts = new Array(10).fill(0);
    for (const l of labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(1000));
    expect(Array.from(labels.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
    expect(FASHION_MNIST_CLASSES[9]).toBe('Ankle boot');
  });

  test('truncated, bad magic, unknown dtype and corrupt gzip fail with ERR_FILE_FORMAT naming the file', async () => {
    const full = encodeIdx(cases[2]);
    const truncated = tmp('truncated.idx');
    await fsp.writeFile(truncated, full.subarray(0, full.length - 3));
    let e = await vaeError(() => readIdx(truncated));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toContain('truncated.idx');
    expect(e.message).toContain(`need ${full.length} bytes`);
    expect(e.message).toContain(`has ${full.length - 3}`);

    const badMagic = tmp('bad-magic.idx');
    await fsp.writeFile(badMagic, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    e = await vaeError(() => readIdx(badMagic));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toMatch(/bad-magic\.idx.*bad IDX magic.*01 02 03 04/);

    const badType = tmp('bad-type.idx');
    await fsp.writeFile(badType, Buffer.from([0, 0, 0x07, 1, 0, 0, 0, 0]));
    expect((await vaeError(() => readIdx(badType))).message).toMatch(/unknown IDX dtype 0x07/);

    const gz = gzipSync(full);
    const corrupt = tmp('corrupt.gz');
    const bytes = Buffer.from(gz);
    bytes.fill(0xaa, 12, gz.length - 4);
    await fsp.writeFile(corrupt, bytes);
    e = await vaeError(() => readIdx(corrupt));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toMatch(/corrupt\.gz.*gzip/);

    const cut = tmp('cut.gz');
    await fsp.writeFile(cut, gz.subarray(0, gz.length - 10));
    expect((await vaeError(() => readIdx(cut))).code).toBe('ERR_FILE_FORMAT');

    const missing = await vaeError(() => readIdx(tmp('nope.idx')));
    expect(missing.code).toBe('ERR_IO');
    expect(missing.message).toContain('nope.idx');
    expect(missing.message).toMatch(/: ENOENT: no such file/); // the code once, not "ENOENT ENOENT:"
  });
});

describe('npy', () => {
  const m = { data: Float32Array.from({ length: 15 }, (_, i) => i / 7 - 1), rows: 5, cols: 3 };

  test('writeNpy / readNpyMatrix round trip with a 64-byte aligned header', async () => {
    const file = tmp('m.npy');
    await writeNpy(file, m);
    const bytes = await fsp.readFile(file);
    const headerLen = 10 + bytes.readUInt16LE(8);
    expect(headerLen % 64).toBe(0);
    expect(bytes.subarray(10, headerLen).toString('latin1')).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(5, 3\), \} *\n$/);
    const back = await readNpyMatrix(file);
    expect([back.rows, back.cols]).toEqual([5, 3]);
    expect(back.data).toEqual(m.data);
    const raw = await readNpy(file);
    expect(raw.dtype).toBe('float32');
    expect(raw.shape).toEqual([5, 3]);
  });

  test('reads hand-written float64, uint8 (v2 header), int64 and 3-D files', async () => {
    const f64 = tmp('f64.npy');
    await fsp.writeFile(f64, npyBytes('<f8', [2, 2], new Uint8Array(Float64Array.from([1.5, -2, 1e-3, 4]).buffer)));
    const a = await readNpyMatrix(f64);
    expect([a.rows, a.cols]).toEqual([2, 2]);
    expect(Array.from(a.data)).toEqual([1.5, -2, Math.fround(1e-3), 4]);

    const u8 = tmp('u8.npy');
    await fsp.writeFile(u8, npyBytes('|u1', [3], Uint8Array.from([0, 51, 255]), { version: 2 }));
    const b = await readNpyMatrix(u8);
    expect([b.rows, b.cols]).toEqual([3, 1]);
    expect(Array.from(b.data)).toEqual([0, Math.fround(0.2), 1]);
    expect(Array.from((await readNpyMatrix(u8, { scale: 1 })).data)).toEqual([0, 51, 255]);

    const i64 = tmp('i64.npy');
    await fsp.writeFile(i64, npyBytes('<i8', [2], new Uint8Array(BigInt64Array.from([-3n, 5n]).buffer)));
    expect(Array.from((await readNpyMatrix(i64)).data)).toEqual([-3, 5]);
    expect((await readNpy(i64)).data).toBeInstanceOf(BigInt64Array);

    const cube = tmp('cube.npy');
    await fsp.writeFile(cube, npyBytes('<f4', [2, 2, 3], new Uint8Array(new Float32Array(12).fill(0.25).buffer)));
    const c = await readNpyMatrix(cube);
    expect([c.rows, c.cols]).toEqual([2, 6]);
  });

  test('fortran order, big-endian, unsupported dtype, bad magic and truncation are clear ERR_FILE_FORMAT errors', async () => {
    const fortran = tmp('fortran.npy');
    await fsp.writeFile(fortran, npyBytes('<f4', [2, 3], new Uint8Array(24), { fortran: true }));
    let e = await vaeError(() => readNpyMatrix(fortran));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toMatch(/Fortran-order/);

    const be = tmp('be.npy');
    await fsp.writeFile(be, npyBytes('>f4', [2], new Uint8Array(8)));
    expect((await vaeError(() => readNpy(be))).message).toMatch(/">f4".*big-endian/);

    const cplx = tmp('complex.npy');
    await fsp.writeFile(cplx, npyBytes('<c16', [1], new Uint8Array(16)));
    e = await vaeError(() => readNpy(cplx));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toMatch(/unsupported \.npy dtype "<c16"/);

    const magic = tmp('magic.npy');
    await fsp.writeFile(magic, Buffer.from('NUMPY not really a numpy file'));
    expect((await vaeError(() => readNpy(magic))).message).toMatch(/magic\.npy.*bad \.npy magic/);

    const trunc = tmp('trunc.npy');
    const full = npyBytes('<f4', [4, 2], new Uint8Array(32));
    await fsp.writeFile(trunc, full.subarray(0, full.length - 5));
    for (const read of [() => readNpy(trunc), () => openNpyRows(trunc)]) {
      e = await vaeError(read);
      expect(e.code).toBe('ERR_FILE_FORMAT');
      expect(e.message).toContain('trunc.npy');
      expect(e.message).toContain(`needs ${full.length} bytes`);
      expect(e.message).toContain(`has ${full.length - 5}`);
    }

    const badHeader = tmp('bad-header.npy');
    await fsp.writeFile(badHeader, npyBytes('<f4', [2], new Uint8Array(8)).fill(0x41, 10, 20));
    expect((await vaeError(() => readNpy(badHeader))).message).toMatch(/bad \.npy header/);
  });

  test('NpyRowWriter streams chunks and rewrites the header shape on close, atomically', async () => {
    const file = tmp('stream.npy');
    const cols = 5;
    const w = await NpyRowWriter.create(file, cols);
    const all: number[] = [];
    let k = 0;
    for (const rows of [13, 1, 7, 13, 20]) {
      const chunk = Float32Array.from({ length: rows * cols }, () => Math.fround(Math.sin(k++)));
      all.push(...chunk);
      void w.write(chunk); // writes are serialised internally, so not awaiting is safe
    }
    expect(existsSync(file)).toBe(false); // nothing at the destination until close()
    const placeholderLen = npyFloat32Header([0, cols]).length;
    expect(await w.close()).toEqual({ rows: 54, cols });
    const bytes = await fsp.readFile(file);
    const headerLen = 10 + bytes.readUInt16LE(8);
    expect(headerLen % 64).toBe(0);
    expect(headerLen).toBeGreaterThanOrEqual(placeholderLen);
    expect(bytes.subarray(0, headerLen).toString('latin1')).toContain("'shape': (54, 5)");
    expect(bytes.length).toBe(headerLen + 54 * cols * 4);
    expect(Array.from((await readNpyMatrix(file)).data)).toEqual(all);
    await expect(w.write(new Float32Array(cols))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });

    const aborted = tmp('aborted.npy');
    const w2 = await NpyRowWriter.create(aborted, 2);
    await w2.write(new Float32Array(4));
    await w2.abort();
    expect(existsSync(aborted)).toBe(false);
    expect((await fsp.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await vaeError(() => w2.write(new Float32Array(3)))).message).toMatch(/for chunk|writer/);
  });

  test('openNpyRows reads bounded chunks and arbitrary row ranges', async () => {
    const rows = 1000, cols = 7;
    const x = { data: Float32Array.from({ length: rows * cols }, (_, i) => i), rows, cols };
    const file = tmp('big.npy');
    await writeNpy(file, x);
    const reader = await openNpyRows(file);
    try {
      expect([reader.rows, reader.cols, reader.dtype]).toEqual([rows, cols, 'float32']);
      const sizes: number[] = [];
      const out = new Float32Array(rows * cols);
      for await (const chunk of reader.chunks(128)) {
        expect(chunk.data.length).toBe(chunk.rows * cols);
        sizes.push(chunk.rows);
        out.set(chunk.data, chunk.start * cols);
      }
      expect(Math.max(...sizes)).toBe(128);
      expect(sizes.reduce((a, b) => a + b)).toBe(rows);
      expect(out).toEqual(x.data);
      const mid = await reader.readRows(500, 3);
      expect(Array.from(mid.data)).toEqual(Array.from(x.data.subarray(500 * cols, 503 * cols)));
      let n = 0;
      for await (const chunk of reader) n += chunk.rows; // default chunking via Symbol.asyncIterator
      expect(n).toBe(rows);
      expect((await vaeError(() => reader.readRows(999, 2))).code).toBe('ERR_INVALID_ARGUMENT');
    } finally {
      await reader.close();
    }
    const u8 = tmp('stream-u8.npy');
    await fsp.writeFile(u8, npyBytes('|u1', [2, 2], Uint8Array.from([0, 255, 51, 102])));
    const r8 = await openNpyRows(u8);
    expect(Array.from((await r8.readRows(1, 1)).data)).toEqual([Math.fround(0.2), Math.fround(0.4)]);
    await r8.close();
  });
});

describe('CSV', () => {
  test('detects a header row, ignores blank lines, handles CRLF and quotes', async () => {
    const file = tmp('h.csv');
    await fsp.writeFile(file, '\uFEFFa,"b",c\r\n1,2,3\r\n\r\n  4 ,"5e-1",-6\r\n');
    const { matrix, header } = await readCsv(file);
    expect(header).toEqual(['a', 'b', 'c']);
    expect([matrix.rows, matrix.cols]).toEqual([2, 3]);
    expect(Array.from(matrix.data)).toEqual([1, 2, 3, 4, 0.5, -6]);

    const plain = tmp('plain.csv');
    await fsp.writeFile(plain, '1,2\n3,4\n');
    expect((await readCsv(plain)).header).toBeNull();
    const forced = await readCsv(plain, { header: true });
    expect(forced.header).toEqual(['1', '2']);
    expect(forced.matrix.rows).toBe(1);
  });

  test('ragged rows and non-numeric cells name the file, line and column', async () => {
    const ragged = tmp('ragged.csv');
    await fsp.writeFile(ragged, 'x,y\n1,2\n\n3,4,5\n');
    let e = await vaeError(() => readCsv(ragged));
    expect(e.code).toBe('ERR_FILE_FORMAT');
    expect(e.message).toMatch(/ragged\.csv.*line 4 has 3 columns but expected 2/);

    const bad = tmp('bad.csv');
    await fsp.writeFile(bad, '1,2\n3,oops\n');
    e = await vaeError(() => readCsv(bad));
    expect(e.message).toMatch(/bad\.csv.*line 2, column 2: expected a number but found "oops"/);

    const empty = tmp('empty.csv');
    await fsp.writeFile(empty, 'a,b\n\n');
    expect((await vaeError(() => readCsv(empty))).message).toMatch(/no data rows/);
    expect((await vaeError(() => readCsv(tmp('missing.csv')))).code).toBe('ERR_IO');
  });

  test('streams chunks and round trips float32 exactly through CsvRowWriter', async () => {
    const cols = 4;
    const values = Float32Array.from({ length: 10 * cols }, (_, i) => Math.fround(Math.tan(i + 0.5) * 10 ** ((i % 9) - 4)));
    values[0] = 0.1;
    values[1] = Math.fround(1 / 3);
    const file = tmp('stream.csv');
    const w = await CsvRowWriter.create(file, cols, { header: ['a', 'b', 'c', 'd'] });
    await w.write(values.subarray(0, 3 * cols));
    await w.write({ data: values.subarray(3 * cols), rows: 7, cols });
    expect(await w.close()).toEqual({ rows: 10, cols });
    const text = await fsp.readFile(file, 'utf8');
    expect(text.split('\n')[0]).toBe('a,b,c,d');
    expect(text.split('\n')[1].startsWith('0.1,0.33333334,')).toBe(true);
    const sizes: number[] = [];
    const back = new Float32Array(values.length);
    for await (const chunk of csvRowChunks(file, { chunkRows: 3 })) {
      sizes.push(chunk.rows);
      expect(chunk.header).toEqual(['a', 'b', 'c', 'd']);
      back.set(chunk.data.subarray(0, chunk.rows * cols), chunk.start * cols);
    }
    expect(sizes).toEqual([3, 3, 3, 1]);
    expect(back).toEqual(values);
  });

  test('formatFloat32 is short and exact', () => {
    expect(formatFloat32(0.1)).toBe('0.1');
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(3)).toBe('3');
    expect(formatFloat32(-1.5e-7)).toBe('-1.5e-7');
    expect(formatFloat32(NaN)).toBe('nan');
    for (const v of [Math.fround(Math.PI), Math.fround(1e-38), Math.fround(3.4e38), Math.fround(-123456.789)]) {
      const s = formatFloat32(v);
      expect(Math.fround(Number(s))).toBe(v);
      expect(s.replace(/^-|e.*$|\./g, '').replace(/^0+/, '').length).toBeLessThanOrEqual(9);
    }
  });
});

describe('loadMatrix', () => {
  test('dispatches on content: npy, csv (auto-scaled 0..255 integers), IDX gz', async () => {
    const m = { data: Float32Array.from([0.5, 1, 2, 3]), rows: 2, cols: 2 };
    const npy = tmp('load.bin'); // the extension lies; content wins
    await writeNpy(npy, m);
    expect(await loadMatrix(npy)).toMatchObject({ format: 'npy', x: { rows: 2, cols: 2 } });

    const csv = tmp('pixels.csv');
    await writeCsv(csv, { data: Float32Array.from([0, 255, 51, 102]), rows: 2, cols: 2 });
    const c = await loadMatrix(csv);
    expect(c.format).toBe('csv');
    expect(Array.from(c.x.data)).toEqual([0, 1, Math.fround(0.2), Math.fround(0.4)]);
    expect(Array.from((await loadMatrix(csv, { scale: 1 })).x.data)).toEqual([0, 255, 51, 102]);

    const idx = tmp('images.gz');
    await writeIdx(idx, { dtype: 'uint8', dims: [2, 2, 2], data: new Uint8Array(8).fill(255) }, { gzip: true });
    const labels = tmp('labels.csv');
    await fsp.writeFile(labels, '3\n7\n');
    const i = await loadMatrix(idx, { labelsPath: labels });
    expect(i).toMatchObject({ format: 'idx', x: { rows: 2, cols: 4 } });
    expect(Array.from(i.labels!)).toEqual([3, 7]);

    await fsp.writeFile(labels, '3\n7\n1\n');
    expect((await vaeError(() => loadMatrix(idx, { labelsPath: labels }))).message).toMatch(/expected 2 labels .* found 3/);
    expect((await vaeError(() => loadMatrix(tmp('absent.npy')))).code).toBe('ERR_IO');
  });

  test('loads an MNIST-style directory with train and test splits', async () => {
    const d = tmp('mnist');
    await fsp.mkdir(d);
    const img = (n: number): IdxArray => ({ dtype: 'uint8', dims: [n, 2, 3], data: new Uint8Array(n * 6).fill(51) });
    const lab = (n: number): IdxArray => ({ dtype: 'uint8', dims: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 10) });
    await writeIdx(path.join(d, 'train-images-idx3-ubyte.gz'), img(5), { gzip: true });
    await writeIdx(path.join(d, 'train-labels-idx1-ubyte.gz'), lab(5), { gzip: true });
    await writeIdx(path.join(d, 't10k-images-idx3-ubyte'), img(2));
    await writeIdx(path.join(d, 't10k-labels-idx1-ubyte'), lab(2));
    const splits = await loadIdxDirectory(d);
    expect([splits.train.x.rows, splits.train.x.cols, splits.train.labels!.length]).toEqual([5, 6, 5]);
    expect(splits.test!.x.rows).toBe(2);
    expect(splits.train.x.data[0]).toBeCloseTo(0.2, 6);
    const loaded = await loadMatrix(d);
    expect(loaded.format).toBe('idx-directory');
    expect(loaded.test!.labels!.length).toBe(2);

    await writeIdx(path.join(d, 't10k-labels-idx1-ubyte'), lab(3));
    expect((await vaeError(() => loadIdxDirectory(d))).message).toMatch(/expected 2 labels/);

    const embedded = await loadMatrix(embeddedDataPath());
    expect([embedded.x.rows, embedded.labels!.length, embedded.test]).toEqual([10000, 10000, undefined]);
    const empty = tmp('empty-dir');
    await fsp.mkdir(empty);
    expect((await vaeError(() => loadIdxDirectory(empty))).message).toMatch(/No MNIST-style files/);
  });
});

describe('writing outputs: symlinks, pipes and streams', () => {
  const m = { data: Float32Array.from({ length: 12 }, (_, i) => i / 4), rows: 4, cols: 3 };

  test('writing through a symlink keeps the link and replaces what it points to', async () => {
    const real = tmp('real.npy'), link = tmp('link.npy');
    await writeNpy(real, { data: new Float32Array(3), rows: 1, cols: 3 });
    await fsp.symlink(real, link);
    await writeNpy(link, m);
    const w = await NpyRowWriter.create(link, 3);
    await w.write(m);
    await w.close();
    expect((await fsp.lstat(link)).isSymbolicLink()).toBe(true);
    expect((await readNpyMatrix(real)).rows).toBe(4);
    const csvReal = tmp('real.csv'), csvLink = tmp('link.csv');
    await writeCsv(csvReal, { data: new Float32Array(3), rows: 1, cols: 3 });
    await fsp.symlink(csvReal, csvLink);
    await writeCsv(csvLink, m);
    expect((await fsp.lstat(csvLink)).isSymbolicLink()).toBe(true);
    expect((await readCsv(csvReal)).matrix.rows).toBe(4);
  });

  test('writing through a link to a missing file creates that file and keeps the link, through further links', async () => {
    const links = tmp('dangling');
    await fsp.mkdir(path.join(links, 'sub'), { recursive: true });
    await fsp.symlink('sub/second.npy', path.join(links, 'first.npy')); // relative: from the link's directory
    await fsp.symlink('../made.npy', path.join(links, 'sub', 'second.npy'));
    await writeNpy(path.join(links, 'first.npy'), m);
    expect((await fsp.lstat(path.join(links, 'first.npy'))).isSymbolicLink()).toBe(true);
    expect((await fsp.lstat(path.join(links, 'sub', 'second.npy'))).isSymbolicLink()).toBe(true);
    expect((await readNpyMatrix(path.join(links, 'made.npy'))).rows).toBe(4);
    await fsp.symlink(path.join(links, 'streamed.npy'), path.join(links, 'stream-link.npy'));
    const w = await NpyRowWriter.create(path.join(links, 'stream-link.npy'), 3);
    await w.write(m);
    await w.close();
    expect((await readNpyMatrix(path.join(links, 'streamed.npy'))).rows).toBe(4);
    expect((await fsp.lstat(path.join(links, 'stream-link.npy'))).isSymbolicLink()).toBe(true);
  });

  /** A named pipe in the temp directory, read whole by a concurrent reader. */
  function fifo(name: string): { file: string; contents: Promise<string> } | undefined {
    if (process.platform === 'win32') return undefined;
    const file = tmp(name);
    const made = spawnSync('mkfifo', [file]);
    if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
    return { file, contents: fsp.readFile(file, 'utf8') };
  }

  test('a named pipe is written into, not replaced by a regular file', async () => {
    const pipe = fifo('out.csv');
    if (!pipe) return;
    await writeCsv(pipe.file, m, { header: ['a', 'b', 'c'] });
    expect((await pipe.contents).split('\n').slice(0, 2)).toEqual(['a,b,c', '0,0.25,0.5']);
    expect((await fsp.stat(pipe.file)).isFIFO()).toBe(true);
  });

  test('a streamed .npy (its header is rewritten on close) refuses a pipe, naming the file', async () => {
    if (process.platform === 'win32') return;
    const file = tmp('out.npy');
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    const err = await vaeError(() => NpyRowWriter.create(file, 3));
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/a regular file .* for file but received ".*out\.npy"/);
    expect((await fsp.stat(file)).isFIFO()).toBe(true);
  });

  test('CsvRowWriter.toStream writes the same text as a file and leaves the stream open', async () => {
    const chunks: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, done) => void (chunks.push(String(chunk)), done()) });
    const w = await CsvRowWriter.toStream(stream, 3, { header: ['a', 'b', 'c'] });
    await w.write(m);
    expect(await w.close()).toEqual({ rows: 4, cols: 3 });
    await writeCsv(tmp('same.csv'), m, { header: ['a', 'b', 'c'] });
    expect(chunks.join('')).toBe(await fsp.readFile(tmp('same.csv'), 'utf8'));
    expect(stream.writableEnded).toBe(false);
    const failing = new Writable({ write: (_chunk, _enc, done) => done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
    failing.on('error', () => undefined);
    const w2 = await CsvRowWriter.toStream(failing, 3, { name: 'stdout' });
    const err = await vaeError(() => w2.write(m));
    expect(err.message).toMatch(/^Cannot write "stdout": .*EPIPE/);
  });

  test('unrecognised binary content is ERR_FILE_FORMAT, not parsed as CSV', async () => {
    const file = tmp('mystery.bin');
    await fsp.writeFile(file, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
    expect(await dataFileFormat(tmp('same.csv'))).toBe('csv');
    const err = await vaeError(() => dataFileFormat(file));
    expect(err.code).toBe('ERR_FILE_FORMAT');
    expect(err.message).toMatch(/mystery\.bin.*unrecognised data file/);
  });
});

describe("Debian's dataset-fashion-mnist (the full data set)", () => {
  const dir = '/usr/share/datasets/fashion-mnist';
  test('loads as 60,000 training and 10,000 test images whose test split equals the embedded one', async () => {
    if (!existsSync(dir)) {
      if (process.env.CI) throw new Error(`${dir} is missing: CI installs dataset-fashion-mnist`);
      console.warn(`skipped: ${dir} is missing (apt-get install dataset-fashion-mnist)`);
      return;
    }
    const { train, test } = await loadIdxDirectory(dir);
    expect([train.x.rows, train.x.cols]).toEqual([60000, 784]);
    expect(train.labels).toHaveLength(60000);
    expect(test?.x.rows).toBe(10000);
    const embedded = await loadEmbeddedFashionMnist();
    expect(sameBits(test!.x.data, embedded.x.data)).toBe(true);
  });
});
