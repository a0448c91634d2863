/**
 * After a finished run: gather each row's metrics (the stage with role "metrics") and predicted label maps
 * (role "labels") from the cache and write the results folder.
 * @module
 */
import { UserError } from "../errors.ts";
import { errnoText } from "../dag/store.ts";
import type { Plan } from "../dag/plan.ts";
import type { Artifacts } from "../dag/stage.ts";
import type { Runner } from "../dag/runner.ts";
import type { LoadedConfig } from "../config/load.ts";
import { metricsFromArtifacts, type ResultFiles, writeResults, writeRowLabels } from "./results.ts";
import type { RowResult } from "./tables.ts";

/** What was written. */
export interface AblateOutput {
  /** The tables and charts written. */
  files: ResultFiles;
  /** Number of label PNGs written. */
  labelMaps: number;
  /** Rows without a metrics artifact. */
  rowsWithoutMetrics: string[];
  /** The metrics of every row of the config, as written to the tables. */
  rows: RowResult[];
}

/**
 * Write `outDir` (metrics tables, chart, label maps) for a run of `config`. Rows in `computed` are loaded
 * through the runner (recomputing a corrupt entry); other rows only contribute metrics already cached.
 */
export async function writeAblateResults(
  runner: Runner,
  plan: Plan,
  config: LoadedConfig,
  outDir: string,
  computed: ReadonlySet<string> = new Set(config.rows.map((r) => r.name)),
): Promise<AblateOutput> {
  try {
    return await writeAll(runner, plan, config, outDir, computed);
  } catch (e) {
    // A results folder that cannot be written (a file where a folder should be, no permission, a full disk) is
    // the user's to fix: one line naming it. The cache is untouched, so a rerun only rewrites the results.
    const code = (e as NodeJS.ErrnoException | null)?.code;
    if (typeof code !== "string" || !/^E[A-Z]+$/.test(code)) throw e;
    throw new UserError(
      `results ${outDir}: cannot write the results (${errnoText(e)}); expected a writable folder (--results DIR)`,
    );
  }
}

async function writeAll(
  runner: Runner,
  plan: Plan,
  config: LoadedConfig,
  outDir: string,
  computed: ReadonlySet<string>,
): Promise<AblateOutput> {
  const { rows, rowsWithoutMetrics } = await collectRowResults(runner, plan, config, computed);
  const roleOf = new Map(plan.stages.map((s) => [s.name, s.role]));
  let labelMaps = 0;
  for (const row of config.rows) {
    if (!computed.has(row.name)) continue;
    for (const s of plan.rows.find((r) => r.name === row.name)?.slots ?? []) {
      if (roleOf.get(s.stage) !== "labels" || s.unit === null) continue;
      labelMaps += writeRowLabels(outDir, row.name, s.unit, await runner.load(plan, s.key)).length;
    }
  }
  const files = await writeResults(outDir, rows, { title: config.title ?? config.name, config: config.file });
  return { files, labelMaps, rowsWithoutMetrics, rows };
}

/**
 * Each row's metrics (the stage with role "metrics") beside the paper's numbers, writing nothing. Rows in
 * `computed` are loaded through the runner (recomputing a corrupt entry); other rows only contribute metrics
 * already cached.
 */
export async function collectRowResults(
  runner: Runner,
  plan: Plan,
  config: LoadedConfig,
  computed: ReadonlySet<string> = new Set(config.rows.map((r) => r.name)),
): Promise<{ rows: RowResult[]; rowsWithoutMetrics: string[] }> {
  const roleOf = new Map(plan.stages.map((s) => [s.name, s.role]));
  const rows: RowResult[] = [];
  const rowsWithoutMetrics: string[] = [];
  for (const row of config.rows) {
    const slots = plan.rows.find((r) => r.name === row.name)?.slots ?? [];
    const metricSlot = slots.find((s) => roleOf.get(s.stage) === "metrics");
    let ours = null;
    if (metricSlot && computed.has(row.name)) {
      ours = metricsFromArtifacts(await runner.load(plan, metricSlot.key));
    } else if (metricSlot) {
      ours = metricsFromArtifacts(readIfCached(runner, metricSlot.stage, metricSlot.key));
    }
    if (!ours) rowsWithoutMetrics.push(row.name);
    rows.push({ row: row.name, title: row.title, ours, paper: row.paper });
  }
  return { rows, rowsWithoutMetrics };
}

/** Verified artifacts if the entry exists and is intact, else null (never computes). */
function readIfCached(runner: Runner, stage: string, key: string): Artifacts | null {
  if (!runner.store.has(stage, key)) return null;
  try {
    return runner.store.read(stage, key).artifacts;
  } catch {
    return null;
  }
}
