/**
 * Minimal assertions (jsr:@std/assert is not reachable here). Same names and semantics as std.
 * @module
 */
import { inspect, isDeepStrictEqual } from "node:util";

export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}values differ\n  actual:   ${
        inspect(actual, { depth: 4, maxArrayLength: 20 })
      }\n  expected: ${inspect(expected, { depth: 4, maxArrayLength: 20 })}`,
    );
  }
}

export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  if (isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(msg ?? `values are equal: ${inspect(actual)}`);
  }
}

export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}${actual} is not within ${tol} of ${expected}`);
  }
}

export function assertLess(a: number, b: number, msg?: string): void {
  if (!(a < b)) throw new AssertionError(msg ?? `${a} is not < ${b}`);
}

export function assertGreater(a: number, b: number, msg?: string): void {
  if (!(a > b)) throw new AssertionError(msg ?? `${a} is not > ${b}`);
}

export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, ErrorClass, msgIncludes);
    return e as Error;
  }
  throw new AssertionError("expected the function to throw");
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, ErrorClass, msgIncludes);
    return e as Error;
  }
  throw new AssertionError("expected the promise to reject");
}

function checkError(e: unknown, ErrorClass?: new (...args: any[]) => Error, msgIncludes?: string) {
  if (ErrorClass && !(e instanceof ErrorClass)) {
    throw new AssertionError(
      `expected ${ErrorClass.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
    );
  }
  if (msgIncludes && !String((e as Error)?.message).includes(msgIncludes)) {
    throw new AssertionError(`error message "${(e as Error)?.message}" does not include "${msgIncludes}"`);
  }
}
