/**
 * onnxruntime-node, loaded on first use. It is an optional dependency: its install script
 * downloads GPU binaries from nuget.org (unless ONNXRUNTIME_NODE_INSTALL=skip), which fails
 * offline, and npm then leaves it out rather than failing the install of vae-node. Training,
 * inference and ONNX export do not need it; OnnxVAE does, and says how to install it.
 */
import type * as Ort from 'onnxruntime-node';
import { VaeError } from '../errors';

let runtime: typeof Ort | undefined;

export function onnxRuntime(): typeof Ort {
  if (runtime) return runtime;
  try {
    runtime = require('onnxruntime-node') as typeof Ort;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes("'onnxruntime-node'");
    throw new VaeError(
      'ERR_NATIVE',
      missing
        ? 'OnnxVAE needs onnxruntime-node, an optional dependency that is not installed (its install script downloads GPU binaries, which fails offline); ' +
            'install it with `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (the CPU runtime ships in the npm package)'
        : `onnxruntime-node could not be loaded: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return runtime;
}
