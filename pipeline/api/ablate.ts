/**
 * `ablate` as a library call: run every row of a config through the cached DAG runner and collect each row's
 * metrics (mIoU, mVC8, mVC16, per-class IoU) next to the paper's numbers. The results folder (tables, chart,
 * label maps) is written only when `resultsDir` is given; `deno task ablate` is this call plus argument parsing.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { UserError } from "../errors.ts";
import { loadConfig, type LoadedConfig, selectRows } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { registeredStages, resolveUnits } from "../dag/registry.ts";
import { Runner, type RunSummary } from "../dag/runner.ts";
import type { RowSpec } from "../dag/plan.ts";
import type { Stage } from "../dag/stage.ts";
import { Progress, type TextSink } from "../dag/progress.ts";
import { type AblateOutput, collectRowResults, writeAblateResults } from "../report/collect.ts";
import type { RowResult } from "../report/tables.ts";
import { checkWritableDir } from "../cli/args.ts";
import { checkAgainstData } from "../data/preflight.ts";
import { writeWhole } from "../report/output_dir.ts";
import type { ShardSpec } from "../dag/shard.ts";
import { runShard, shardPlanText, type ShardRun } from "../cluster/shard_cli.ts";

/** Module that registers the method's stages (imported unless `stages` names others). */
export const DEFAULT_STAGES: string = path.join(REPO_ROOT, "pipeline", "stages", "mod.ts");

/** The default cache folder: `$VIDSEG_CACHE`, else `results/cache` in the repo. */
export function defaultCacheDir(): string {
  return Deno.env.get("VIDSEG_CACHE") ?? path.join(REPO_ROOT, "results", "cache");
}

/** Options of {@link ablate}. */
export interface AblateOptions {
  /** `KEY=VALUE` overrides (only when `config` is a file path; a loaded config already carries its own). */
  set?: string[];
  /**
   * Run only these rows (optional rows of the file may be named); the results then hold only them. Default:
   * every non-optional row.
   */
  rows?: string[];
  /** Cache folder (default {@link defaultCacheDir}); rerunning a config reuses everything cached there. */
  cacheDir?: string;
  /**
   * Results root: when given, `<resultsDir>/<config name>/` receives metrics.{md,csv,svg,png}, class_iou.csv
   * and the label maps `<row>/<clip>/<frame>.png` of the rows run — written beside and swapped in whole, so
   * the folder holds exactly this run's files. Omitted: nothing is written outside the cache.
   */
  resultsDir?: string;
  /** Stage modules to import instead of {@link DEFAULT_STAGES} (they register their stages). */
  stages?: string[];
  /** Directory a relative config path is resolved against (default: the current directory). */
  cwd?: string;
  /** Where progress lines go (default stderr); `null` = silent. */
  progress?: TextSink | null;
  /** Receives `note: …` lines (default: stderr). */
  note?: (line: string) => void;
  /** {@link ablatePlan}: also show how the plan splits into `shard.count` shards (this one marked). */
  shard?: ShardSpec;
}

/** What {@link ablate} returns. */
export interface AblateResult {
  /** The config as run (the selected rows). */
  config: LoadedConfig;
  /** Per row: ours (null when no metrics stage ran) and the paper's numbers, in config order. */
  rows: RowResult[];
  /** Counts of stage instances run, cached, recomputed. */
  summary: RunSummary;
  /** Wall time of the run (ms). */
  elapsedMs: number;
  /** Per-stage table of runs, cache hits and wall time (the CLI prints it). */
  stageTable: string;
  /** What was written under `resultsDir`, or null when nothing was asked. */
  output: AblateOutput | null;
  /** Names of the stages that were registered and planned. */
  stages: string[];
}

/** A config made ready to plan: rows selected, stages registered, runner open. */
type Prepared = {
  full: LoadedConfig;
  config: LoadedConfig;
  stages: Stage[];
  runner: Runner;
  cacheDir: string;
};

/** A silent text sink. */
const NULL_SINK: TextSink = { write: () => {}, isTty: false };

/** Import stage modules (they register themselves). Returns the modules imported. */
async function importStages(modules: readonly string[]): Promise<string[]> {
  const list = modules.length ? [...modules] : fs.existsSync(DEFAULT_STAGES) ? [DEFAULT_STAGES] : [];
  for (const m of list) {
    if (!fs.existsSync(m)) throw new UserError(`--stages ${m}: module not found`);
    await import(pathToFileURL(m).href);
  }
  return list;
}

async function prepare(
  config: LoadedConfig | string,
  opts: AblateOptions,
  checkResults: boolean,
): Promise<Prepared> {
  const note = opts.note ?? ((l: string) => console.error(l));
  const wanted = opts.rows ?? [];
  // Optional rows named in `rows` join the table (their results sit beside the default rows').
  const full = typeof config === "string"
    ? loadConfig(config, { set: opts.set ?? [], cwd: opts.cwd, include: [...wanted] })
    : config;
  const selected = wanted.length ? selectRows(full, wanted) : full;
  const skipped = (full.allRows ?? []).filter((r) => r.optional && !full.rows.some((q) => q.name === r.name));
  if (skipped.length) {
    note(
      `note: optional rows ${
        skipped.map((r) => r.name).join(", ")
      } not run (they need user weights; name them with --rows)`,
    );
  }
  const imported = await importStages(opts.stages ?? []);
  const stages = registeredStages();
  if (!stages.length) {
    const why = imported.length
      ? imported.join(", ")
      : `${path.relative(REPO_ROOT, DEFAULT_STAGES)} not found`;
    note(`note: no stages are registered (${why}); nothing to compute`);
  }
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  if (checkResults) {
    // Fail before computing, not after hours: the results folder (replaced whole at the end), the cache, and
    // the values that depend on the data (K against the feature cells, frame sizes).
    if (opts.resultsDir !== undefined) checkWritableDir(path.join(opts.resultsDir, full.name), "--results");
    checkWritableDir(cacheDir, "--cache");
    if (stages.length && !opts.stages?.length) {
      await checkAgainstData(selected.rows.map((r) => r.config as unknown as Record<string, unknown>));
    }
  }
  const progress = new Progress(opts.progress === null ? NULL_SINK : opts.progress);
  const runner = new Runner({ cacheDir, root: REPO_ROOT, progress });
  return { full, config: selected, stages, runner, cacheDir };
}

/** The runner's rows for the rows of `c`. */
async function rowSpecs(c: LoadedConfig, stages: readonly Stage[]): Promise<RowSpec[]> {
  const out: RowSpec[] = [];
  for (const r of c.rows) {
    const cfg = r.config as unknown as Record<string, unknown>;
    out.push({ name: r.name, config: cfg, units: stages.length ? await resolveUnits(cfg) : [] });
  }
  return out;
}

/**
 * Run a config: every selected row, every clip, through the cached stages, then the metrics per row.
 *
 * @param config a config file path (YAML, see `configs/`) or a config from {@link loadConfig}
 * @example
 * ```ts
 * const r = await ablate("configs/small.yaml", { progress: null });
 * for (const row of r.rows) console.log(row.row, row.ours?.mIoU);
 * ```
 */
export async function ablate(config: LoadedConfig | string, opts: AblateOptions = {}): Promise<AblateResult> {
  const p = await prepare(config, opts, true);
  const plan = await p.runner.plan(p.stages, await rowSpecs(p.config, p.stages));
  const summary = await p.runner.execute(plan);
  p.runner.progress.end();
  const stageTable = p.runner.progress.summaryTable(plan.stages.map((s) => s.name));
  // The results hold exactly the rows of this run. The folder is written beside its place and swapped in at
  // the end, so a failed run leaves the previous results whole.
  let output: AblateOutput | null = null;
  let rows: RowResult[];
  if (opts.resultsDir !== undefined) {
    const target = path.join(opts.resultsDir, p.full.name);
    output = await writeWhole(target, "--results", async (staging) => {
      const o = await writeAblateResults(p.runner, plan, { ...p.config, name: p.full.name }, staging);
      const moved = (f: string) => path.join(target, path.relative(staging, f));
      const files = Object.fromEntries(Object.entries(o.files).map(([k, f]) => [k, moved(f)]));
      return { ...o, files: files as unknown as typeof o.files };
    });
    rows = output.rows;
  } else {
    rows = (await collectRowResults(p.runner, plan, p.config)).rows;
  }
  return {
    config: p.config,
    rows,
    summary,
    elapsedMs: p.runner.progress.elapsedMs(),
    stageTable,
    output,
    stages: p.stages.map((s) => s.name),
  };
}

/**
 * What {@link ablate} would do, computing nothing: per row, which stage instances are cached, which would run
 * and which rows share them. Returns the text `deno task ablate --plan` prints.
 */
export async function ablatePlan(config: LoadedConfig | string, opts: AblateOptions = {}): Promise<string> {
  const p = await prepare(config, opts, false);
  const rows = await rowSpecs(p.config, p.stages);
  const plan = await p.runner.plan(p.stages, rows);
  const titles = Object.fromEntries(p.config.rows.filter((r) => r.title).map((r) => [r.name, r.title!]));
  const split = opts.shard ? `\n${shardPlanText(p.runner, plan, opts.shard, rows)}` : "";
  return `${p.config.file}: ${p.config.title ?? p.config.name} — cache ${p.cacheDir}\n${
    p.runner.formatPlan(plan, titles)
  }${split}`;
}

/**
 * Compute one shard of a config into the (shared) cache and write no results: every shard of N, run anywhere and
 * in any order, then one {@link ablate} computes what is left and writes the results (pipeline/dag/shard.ts).
 */
export async function ablateShard(
  config: LoadedConfig | string,
  opts: AblateOptions & { shard: ShardSpec },
): Promise<ShardRun> {
  const p = await prepare(config, opts, false);
  const rows = await rowSpecs(p.config, p.stages);
  return runShard(p.runner, await p.runner.plan(p.stages, rows), opts.shard, rows);
}
