/**
 * Entry-point wrapper for the CLIs: a user mistake (UserError, or a SafetensorsError naming a bad weights
 * file) prints one line `error: <message>` and exits 2; anything else is a bug and keeps its stack trace.
 * @module
 */
import { UserError } from "../errors.ts";

/** True for errors whose message is meant for the user as is. */
export function isUserError(e: unknown): e is Error {
  return e instanceof UserError || (e instanceof Error && e.name === "SafetensorsError");
}

/** Run `main(args)`; exit with its return code (default 0), or 2 after printing a user error. */
export async function runMain(
  main: (args: string[]) => Promise<number | void>,
  args: string[] = Deno.args,
): Promise<never> {
  let code: number;
  try {
    code = (await main(args)) ?? 0;
  } catch (e) {
    if (!isUserError(e)) throw e;
    console.error(`error: ${e.message}`);
    code = 2;
  }
  Deno.exit(code);
}
