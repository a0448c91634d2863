/** Test helpers: run a CLI module (or any script) as a child process and collect its exit code and output. */
import * as path from "node:path";
import { ROOT } from "../shared.ts";

/** Output of a CLI run as a child process. */
export interface CliRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run, ms. */
  ms: number;
}

/** Run `deno run -A <script> ...args` from the repo root with exactly `env` (plus the parent's unless clearEnv). */
export async function runCli(
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: { clearEnv?: boolean } = {},
): Promise<CliRun> {
  const t0 = performance.now();
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, ...args],
    env,
    clearEnv: opts.clearEnv,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    signal: o.signal,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
    ms: performance.now() - t0,
  };
}

/** Run `pipeline/cli/<module>` with `args` in CI mode (plain progress, no colours), extra environment `env`. */
export function cli(module: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(path.join(ROOT, "pipeline", "cli", module), args, { CI: "true", NO_COLOR: "1", ...env });
}
