import { expect } from 'vitest';
import { GvmiTestError } from '../../src/errors.js';

/** Awaits a promise that must reject with a GvmiTestError, and returns that error. */
export async function failure(p: Promise<unknown>): Promise<GvmiTestError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GvmiTestError);
  return e as GvmiTestError;
}
