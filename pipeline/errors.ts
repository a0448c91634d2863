/**
 * User-facing errors. Anything the user can fix (a config key, a frame file, a weights folder) is thrown as a
 * `UserError` whose message is one line naming the file/key and what was expected. The CLIs print only that
 * line and exit non-zero; any other error is a bug and keeps its stack trace.
 * @module
 */
export class UserError extends Error {
  /** Always "UserError". */
  override name = "UserError";
}

/** Throw a UserError: `where: what (expected ...)`. */
export function fail(where: string, what: string): never {
  throw new UserError(`${where}: ${what}`);
}
