import { VaeError } from '../../lib/errors';

/** fn() throws a VaeError with this code (and a message matching `message`). */
export function expectVaeError(fn: () => unknown, code: string, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(VaeError);
  expect((thrown as VaeError).code).toBe(code);
  if (message) expect((thrown as VaeError).message).toMatch(message);
}

/** The promise rejects with a VaeError with this code (and a message matching `message`). */
export async function expectRejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaeError);
  expect((err as VaeError).code).toBe(code);
  if (message) expect((err as VaeError).message).toMatch(message);
}
