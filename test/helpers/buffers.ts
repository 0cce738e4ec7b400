// ES2024 resizable buffers (Node >= 20), which this project's TypeScript lib does not declare.
export type ResizableArrayBuffer = ArrayBuffer & { resize(byteLength: number): void };
export const Resizable = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;
export const Growable = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => SharedArrayBuffer;

/** A Float32Array copy of `values` over a resizable ArrayBuffer of its exact size. */
export function resizableCopy(values: Float32Array): { buffer: ResizableArrayBuffer; array: Float32Array } {
  const buffer = new Resizable(values.byteLength, { maxByteLength: values.byteLength });
  const array = new Float32Array(buffer);
  array.set(values);
  return { buffer, array };
}

/** True when two typed arrays hold the same bits (their own bytes only, whatever buffer they view). */
export function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
