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
import { runShard, shardOption, shardPlanText } from "../cluster/shard_cli.ts";
import { checkWritableDir, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE = "deno task ablate [--plan] [--shard I/N] [--set KEY=VALUE]... [--cache DIR] [--rows A,B] CONFIG";
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
  rows: { type: "string", value: "A,B", doc: "run only these rows" },
  shard: {
    type: "string",
    value: "I/N",
    doc: "compute only shard I of N (0 ≤ I < N) into the shared cache, write no results; " +
      "run every shard, then once without --shard for the results (with --plan: show the split)",
  },
  cache: { type: "string", value: "DIR", doc: "cache directory (default $VIDSEG_CACHE or results/cache)" },
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
  const list = modules.length ? modules.map(userPath) : fs.existsSync(DEFAULT_STAGES) ? [DEFAULT_STAGES] : [];
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
  const full = loadConfig(positionals[0], { set: options.set as string[], cwd: userCwd(), include: rowsWanted });
  const config = rowsWanted.length ? selectRows(full, rowsWanted) : full;
  const skipped = (full.allRows ?? []).filter((r) => r.optional && !full.rows.some((q) => q.name === r.name));
  if (skipped.length) {
    console.error(
      `note: optional rows ${skipped.map((r) => r.name).join(", ")} not run (they need user weights; name them with --rows)`,
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
  const cacheDir = userPath(
    (options.cache as string | undefined) ?? Deno.env.get("VIDSEG_CACHE") ??
      path.join(REPO_ROOT, "results", "cache"),
  );
  const resultsRoot = userPath(
    (options.results as string | undefined) ?? Deno.env.get("VIDSEG_RESULTS") ??
      path.join(REPO_ROOT, "results"),
  );
  const rowSpecs = async (c: LoadedConfig): Promise<RowSpec[]> => {
    const out: RowSpec[] = [];
    for (const r of c.rows) {
      const cfg = r.config as unknown as Record<string, unknown>;
      out.push({ name: r.name, config: cfg, units: stages.length ? await resolveUnits(cfg) : [] });
    }
    return out;
  };
  const shard = shardOption(options.shard);
  if (!options.plan && !shard) {
    // Fail before computing, not after hours: the table's folder and every row's folder must be writable.
    checkWritableDir(path.join(resultsRoot, full.name), "--results");
    for (const r of config.rows) checkWritableDir(path.join(resultsRoot, full.name, r.name), "--results");
  }
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const plan = await runner.plan(stages, await rowSpecs(config));
  const titles = Object.fromEntries(config.rows.filter((r) => r.title).map((r) => [r.name, r.title!]));
  if (options.plan) {
    console.log(`${config.file}: ${config.title ?? config.name} — cache ${cacheDir}`);
    console.log(runner.formatPlan(plan, titles));
    if (shard) console.log(shardPlanText(runner, plan, shard, await rowSpecs(config)));
    return 0;
  }
  if (shard) {
    await runShard(runner, plan, shard, await rowSpecs(config), "ablate");
    return 0;
  }
  const summary = await runner.execute(plan);
  runner.progress.end();
  console.error(runner.progress.summaryTable(plan.stages.map((s) => s.name)));
  // The results tables cover every row of the config: rows not selected by --rows contribute the metrics
  // already in the cache (if any), so a partial run never erases earlier results.
  const fullPlan = config === full ? plan : await runner.plan(stages, await rowSpecs(full));
  const outDir = path.join(resultsRoot, full.name);
  const out = await writeAblateResults(
    runner,
    fullPlan,
    full,
    outDir,
    new Set(config.rows.map((r) => r.name)),
  );
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
