/** Test helpers: run a CLI module (or any script) as a child process and collect its exit code and output. */
import * as path from "node:path";
import { ROOT } from "../paths.ts";

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
  opts: { clearEnv?: boolean; unprivileged?: boolean } = {},
): Promise<CliRun> {
  const t0 = performance.now();
  const argv = [Deno.execPath(), "run", "-A", "--quiet", script, ...args];
  const [cmd, ...rest] = opts.unprivileged ? unprivileged(argv) : argv;
  const o = await new Deno.Command(cmd, {
    args: rest,
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

/** Capabilities that let root ignore file permissions. */
const DAC_CAPS = "-dac_override,-dac_read_search,-fowner";

/**
 * `argv` run so that file permissions apply: as root, through `setpriv` without the capabilities that bypass
 * them (the process keeps uid 0, so the repo and the Deno cache stay readable, but a `chmod 000` file is
 * not); any other user is unprivileged already.
 */
export function unprivileged(argv: string[]): string[] {
  if (Deno.uid() !== 0) return argv;
  return ["setpriv", "--bounding-set", DAC_CAPS, "--inh-caps", DAC_CAPS, ...argv];
}
