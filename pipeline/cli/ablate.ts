/**
 * `deno task ablate [--plan] [--set KEY=VALUE]... [--cache DIR] [--rows A,B] CONFIG`
 *
 * Loads and validates CONFIG, builds the pipeline from the registered stages, runs every row through the
 * cached DAG runner (or, with --plan, prints what is cached and what would run) and writes
 * `results/<config>/` (metrics.csv/.md, class_iou.csv, metrics.svg/.png, <row>/<clip>/<frame>.png).
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { UserError } from "../errors.ts";
import { loadConfig, type LoadedConfig, selectRows } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { registeredStages, resolveUnits } from "../dag/registry.ts";
import { Runner } from "../dag/runner.ts";
import { fmtDuration } from "../dag/progress.ts";
import type { RowSpec } from "../dag/plan.ts";
import { writeAblateResults } from "../report/collect.ts";
import { writeWhole } from "../report/output_dir.ts";
import { checkAgainstData } from "../data/preflight.ts";
import {
  cacheDirOption,
  checkWritableDir,
  helpText,
  type OptionSpec,
  parseArgs,
  userCwd,
  userPath,
} from "./args.ts";
import { runMain } from "./main.ts";

const USAGE = "deno task ablate [--plan] [--set KEY=VALUE]... [--cache DIR] [--rows A,B] CONFIG";
const OPTIONS: Record<string, OptionSpec> = {
  plan: {
    type: "boolean",
    doc: "print, per row, which stages are cached and which would run; compute nothing",
  },
  set: {
    type: "list",
    value: "KEY=VALUE",
    doc: "override a config key in every row (rows.NAME.KEY=VALUE: one row); repeatable",
  },
  rows: { type: "string", value: "A,B", doc: "run only these rows (the tables then hold only them)" },
  cache: {
    type: "string",
    value: "DIR",
    doc: "cache directory, built graphs in DIR/graphs (default $VIDSEG_CACHE or results/cache)",
  },
  results: { type: "string", value: "DIR", doc: "results root (default $VIDSEG_RESULTS or results/)" },
  stages: {
    type: "list",
    value: "MODULE",
    doc: "import this stage module instead of pipeline/stages/mod.ts; repeatable",
  },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** Default module that registers the real stages. */
export const DEFAULT_STAGES = path.join(REPO_ROOT, "pipeline", "stages", "mod.ts");

/** Import stage modules (they register themselves). Returns the modules imported. */
async function importStages(modules: string[]): Promise<string[]> {
  const list = modules.length
    ? modules.map((m) => userPath(m, "--stages"))
    : fs.existsSync(DEFAULT_STAGES)
    ? [DEFAULT_STAGES]
    : [];
  for (const m of list) {
    if (!fs.existsSync(m)) throw new UserError(`--stages ${m}: module not found`);
    await import(pathToFileURL(m).href);
  }
  return list;
}

/** The ablate command; returns the exit code. */
export async function ablate(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS, "CONFIG is a YAML file such as configs/table2.yaml."));
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UserError(`expected exactly one CONFIG file, got ${positionals.length} (usage: ${USAGE})`);
  }
  const rowsWanted = typeof options.rows === "string"
    ? options.rows.split(",").map((s) => s.trim()).filter(Boolean)
    : [];
  // Optional rows named with --rows join the table (their results sit beside the default rows').
  const full = loadConfig(positionals[0], {
    set: options.set as string[],
    cwd: userCwd(),
    include: rowsWanted,
  });
  const config = rowsWanted.length ? selectRows(full, rowsWanted) : full;
  const skipped = (full.allRows ?? []).filter((r) => r.optional && !full.rows.some((q) => q.name === r.name));
  if (skipped.length) {
    console.error(
      `note: optional rows ${
        skipped.map((r) => r.name).join(", ")
      } not run (they need user weights; name them with --rows)`,
    );
  }
  const imported = await importStages(options.stages as string[]);
  const stages = registeredStages();
  if (!stages.length) {
    const why = imported.length
      ? imported.join(", ")
      : `${path.relative(REPO_ROOT, DEFAULT_STAGES)} not found`;
    console.error(`note: no stages are registered (${why}); nothing to compute`);
  }
  const cacheDir = cacheDirOption(options.cache as string | undefined, REPO_ROOT);
  const resultsRoot = options.results !== undefined
    ? userPath(options.results as string, "--results")
    : Deno.env.get("VIDSEG_RESULTS") !== undefined
    ? userPath(Deno.env.get("VIDSEG_RESULTS")!, "VIDSEG_RESULTS")
    : path.join(REPO_ROOT, "results");
  const rowSpecs = async (c: LoadedConfig): Promise<RowSpec[]> => {
    const out: RowSpec[] = [];
    for (const r of c.rows) {
      const cfg = r.config as unknown as Record<string, unknown>;
      out.push({ name: r.name, config: cfg, units: stages.length ? await resolveUnits(cfg) : [] });
    }
    return out;
  };
  if (!options.plan) {
    // Fail before computing, not after hours: the results folder (replaced whole at the end) and the cache.
    checkWritableDir(path.join(resultsRoot, full.name), "--results");
    checkWritableDir(cacheDir, "--cache");
    if (stages.length && !(options.stages as string[]).length) {
      await checkAgainstData(config.rows.map((r) => r.config as unknown as Record<string, unknown>));
    }
  }
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const plan = await runner.plan(stages, await rowSpecs(config));
  const titles = Object.fromEntries(config.rows.filter((r) => r.title).map((r) => [r.name, r.title!]));
  if (options.plan) {
    console.log(`${config.file}: ${config.title ?? config.name} — cache ${cacheDir}`);
    console.log(runner.formatPlan(plan, titles));
    return 0;
  }
  const summary = await runner.execute(plan);
  runner.progress.end();
  console.error(runner.progress.summaryTable(plan.stages.map((s) => s.name)));
  // The results folder holds exactly the rows of this run; it is written beside the previous one and swapped
  // in at the end, so a failed run leaves the previous results whole.
  const outDir = path.join(resultsRoot, full.name);
  const out = await writeWhole(outDir, "--results", async (staging) => {
    const o = await writeAblateResults(runner, plan, { ...config, name: full.name }, staging);
    const moved = (f: string) => path.join(outDir, path.relative(staging, f));
    const files = Object.fromEntries(Object.entries(o.files).map(([k, f]) => [k, moved(f)]));
    return { ...o, files: files as unknown as typeof o.files };
  });
  const notNeeded = summary.notNeeded ? `, ${summary.notNeeded} not needed` : "";
  console.error(`ablate: ${summary.line}${notNeeded} (${fmtDuration(runner.progress.elapsedMs())})`);
  if (out.rowsWithoutMetrics.length && stages.length) {
    console.error(`note: no metrics for row(s) ${out.rowsWithoutMetrics.join(", ")}`);
  }
  console.log(`results: ${out.files.md}`);
  const others = [out.files.classCsv, out.files.svg, out.files.png].map((f) => path.basename(f)).join(", ");
  console.log(`         ${out.files.csv}, ${others}`);
  if (out.labelMaps) console.log(`         ${out.labelMaps} label maps under ${outDir}/<row>/<clip>/`);
  return 0;
}

if (import.meta.main) await runMain(ablate);
