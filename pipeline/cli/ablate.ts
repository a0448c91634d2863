/**
 * `deno task ablate [--plan] [--set KEY=VALUE]... [--cache DIR] [--rows A,B] CONFIG`
 *
 * Loads and validates CONFIG, builds the pipeline from the registered stages, runs every row through the
 * cached DAG runner (or, with --plan, prints what is cached and what would run) and writes
 * `results/<config>/` (metrics.csv/.md, class_iou.csv, metrics.svg/.png, <row>/<clip>/<frame>.png).
 * @module
 */
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { fmtDuration } from "../dag/progress.ts";
import { ablate as runAblate, ablatePlan, ablateShard } from "../api/ablate.ts";
import { shardOption } from "../cluster/shard_cli.ts";
import { cacheDirOption, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE =
  "deno task ablate [--plan] [--shard I/N] [--set KEY=VALUE]... [--cache DIR] [--rows A,B] CONFIG";
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
  shard: {
    type: "string",
    value: "I/N",
    doc: "compute only shard I of N (0 ≤ I < N) into the shared cache, write no results; " +
      "run every shard, then once without --shard for the results (with --plan: show the split)",
  },
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
  const shard = shardOption(options.shard);
  const cacheDir = cacheDirOption(options.cache as string | undefined, REPO_ROOT);
  const resultsRoot = options.results !== undefined
    ? userPath(options.results as string, "--results")
    : Deno.env.get("VIDSEG_RESULTS") !== undefined
    ? userPath(Deno.env.get("VIDSEG_RESULTS")!, "VIDSEG_RESULTS")
    : path.join(REPO_ROOT, "results");
  const common = {
    set: options.set as string[],
    rows: rowsWanted,
    cacheDir,
    stages: (options.stages as string[]).map((m) => userPath(m, "--stages")),
    cwd: userCwd(),
  };
  if (options.plan) {
    console.log(await ablatePlan(positionals[0], { ...common, shard: shard ?? undefined }));
    return 0;
  }
  if (shard) {
    const s = await ablateShard(positionals[0], { ...common, shard });
    if (s.stageTable) console.error(s.stageTable);
    console.error(`ablate: ${s.line} (${fmtDuration(s.elapsedMs)})`);
    return 0;
  }
  const r = await runAblate(positionals[0], { ...common, resultsDir: resultsRoot });
  console.error(r.stageTable);
  const out = r.output!;
  const notNeeded = r.summary.notNeeded ? `, ${r.summary.notNeeded} not needed` : "";
  console.error(`ablate: ${r.summary.line}${notNeeded} (${fmtDuration(r.elapsedMs)})`);
  if (out.rowsWithoutMetrics.length && r.stages.length) {
    console.error(`note: no metrics for row(s) ${out.rowsWithoutMetrics.join(", ")}`);
  }
  console.log(`results: ${out.files.md}`);
  const others = [out.files.classCsv, out.files.svg, out.files.png].map((f) => path.basename(f)).join(", ");
  console.log(`         ${out.files.csv}, ${others}`);
  const outDir = path.join(resultsRoot, r.config.name);
  if (out.labelMaps) console.log(`         ${out.labelMaps} label maps under ${outDir}/<row>/<clip>/`);
  return 0;
}

if (import.meta.main) await runMain(ablate);
