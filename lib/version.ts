import { readFileSync } from 'fs';
import * as path from 'path';
import { packageRoot } from './native/binding';

let version: string | undefined;

/** This package's version, read once from its package.json. */
export function libraryVersion(): string {
  version ??= JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string;
  return version;
}
