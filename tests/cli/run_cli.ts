/** Test helper: run a CLI module of pipeline/cli as a child process (CI mode, no colours, no stdin). */
import * as path from "node:path";
import { ROOT } from "../shared.ts";

/** Output of a CLI run as a child process. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `pipeline/cli/<module>` with `args` (extra environment `env`) and collect its exit code and output. */
export async function cli(module: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", path.join(ROOT, "pipeline", "cli", module), ...args],
    env: { CI: "true", NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}
