// Two Jest-only workarounds, applied to every test file before it loads anything:
// - onnx-buf ships only an ES module. Node >= 20.19 require()s it natively, Jest's module
//   loader cannot, so it is handed to Node's own loader (see lib/onnx/proto.ts).
// - Jest runs a test file in its own realm, but onnxruntime-node's binding returns
//   Float32Arrays of Node's main realm, which fail onnxruntime-common's `instanceof`
//   check (microsoft/onnxruntime#16622). The file's realm adopts the main Float32Array.
jest.mock('onnx-buf', () =>
  (process.getBuiltinModule('node:module') as typeof import('node:module')).createRequire(__filename)('onnx-buf'),
);
jest.mock('onnxruntime-node', () => {
  globalThis.Float32Array = (process.getBuiltinModule('node:vm') as typeof import('node:vm')).runInThisContext('Float32Array');
  return jest.requireActual('onnxruntime-node');
});
