/**
 * The compiled library in dist/, for tests that run it outside jest's TypeScript transform
 * (the CLI in a child process, the library in worker threads). Compiled with tsc only when
 * missing or older than some lib/**.ts source, so a single test file works on a fresh
 * checkout and costs nothing when `npm run build:ts` (or `npm install`) already ran.
 */
import { execFileSync } from 'child_process';
import { existsSync, readdirSync, statSync } from 'fs';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles lib/ into dist/ if dist/ is missing or stale; `probe` is a file tsc emits. */
export function ensureDist(probe = path.join(DIST, 'index.js')): void {
  if (existsSync(probe) && statSync(probe).mtimeMs >= newestSource(path.join(ROOT, 'lib'))) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
}
