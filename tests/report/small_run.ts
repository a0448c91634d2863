/**
 * A small cached run for the report tests (figures, notebooks): configs/small.yaml on the tiny random-weight
 * conformance model (tests/fixtures/conformance), the optimized schedule, 8 frames in batches of 4 — about 30 s
 * of CPU the first time. The cache lives in one temp directory shared by the test files of a run
 * ($VIDSEG_TEST_REPORT_DIR, default <tmp>/vidseg-report-small): `ablate` is re-run on every call but only
 * computes what is missing (the DAG cache and its locks make concurrent and repeated use safe).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FIXTURES, ROOT } from "../paths.ts";
import { cli } from "../cli/run_cli.ts";

/** The config and the overrides of the small run. */
export const SMALL_CONFIG = path.join(ROOT, "configs", "small.yaml");
export const SMALL_SET = [
  "backbone.kind=sd",
  `backbone.weights=${path.join(FIXTURES, "conformance")}`,
  "schedule=optimized",
  "dataset.max_frames=8",
  "batch_size=4",
];

/** Where the small run is: cache and results root. */
export interface SmallRun {
  config: string;
  set: string[];
  cache: string;
  results: string;
  /** `--config … --cache … --set …` for the figures/notebooks CLIs. */
  args: string[];
}

export { cli, type CliRun } from "../cli/run_cli.ts";

/**
 * `--config … --cache … --out <out> --only <only>` without the run's `--set` overrides: none of the config's
 * artifacts is cached under these keys (for the "missing artifact" messages of figures/notebooks).
 */
export function argsWithoutOverrides(r: SmallRun, out: string, only: string): string[] {
  return ["--config", r.config, "--cache", r.cache, "--out", out, "--only", only];
}

/** Fill (or reuse) the small run's cache and results. */
export async function smallRun(): Promise<SmallRun> {
  const dir = Deno.env.get("VIDSEG_TEST_REPORT_DIR") ?? path.join(os.tmpdir(), "vidseg-report-small");
  const cache = path.join(dir, "cache"), results = path.join(dir, "results");
  fs.mkdirSync(dir, { recursive: true });
  const sets = SMALL_SET.flatMap((s) => ["--set", s]);
  const r = await cli("ablate.ts", [SMALL_CONFIG, "--cache", cache, "--results", results, ...sets]);
  if (r.code !== 0) throw new Error(`ablate of the small run failed (${r.code}):\n${r.stderr.slice(-2000)}`);
  return {
    config: SMALL_CONFIG,
    set: [...SMALL_SET],
    cache,
    results,
    args: ["--config", SMALL_CONFIG, "--cache", cache, ...sets],
  };
}

/** Run `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(tag: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vidseg-${tag}-`));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
