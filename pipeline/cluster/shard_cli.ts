/**
 * The `--shard I/N` part of `ablate` and `segment`: split the plan (pipeline/dag/shard.ts) with the expected costs
 * of costs.ts, compute one shard's instances into the shared cache; or describe the split for `--plan`.
 * @module
 */
import type { Plan, RowSpec } from "../dag/plan.ts";
import type { Runner, RunSummary } from "../dag/runner.ts";
import {
  formatSplit,
  parseShard,
  shardKeys,
  type ShardSpec,
  type ShardSplit,
  splitPlan,
} from "../dag/shard.ts";
import { framesCounter, STAGE_WEIGHTS } from "./costs.ts";

/** The parsed `--shard` value, or null when absent. */
export function shardOption(value: unknown): ShardSpec | null {
  return typeof value === "string" ? parseShard(value) : null;
}

/** The split of a plan into `count` shards, balanced by frames × measured stage cost. */
export function splitFor(plan: Plan, count: number, rows: readonly RowSpec[]): ShardSplit {
  return splitPlan(plan, count, { frames: framesCounter(rows), weights: STAGE_WEIGHTS });
}

/** `--plan --shard I/N`: the split per shard, this shard marked. */
export function shardPlanText(
  runner: Runner,
  plan: Plan,
  shard: ShardSpec,
  rows: readonly RowSpec[],
): string {
  return formatSplit(splitFor(plan, shard.count, rows), runner.status(plan), shard.index);
}

/** What one shard did. */
export interface ShardRun {
  /** The shard that ran. */
  shard: ShardSpec;
  /** The (row, clip) chains it owns ("row/clip"). */
  units: string[];
  /** Counts of stage instances run and cached. */
  summary: RunSummary;
  /** Per-stage table of what ran (empty when nothing did). */
  stageTable: string;
  /** Wall time (ms). */
  elapsedMs: number;
  /** "shard i/n: N run, M cached, K left to other shards or the final run". */
  line: string;
}

/** Compute shard `shard` of the plan into the runner's cache. */
export async function runShard(
  runner: Runner,
  plan: Plan,
  shard: ShardSpec,
  rows: readonly RowSpec[],
): Promise<ShardRun> {
  const split = splitFor(plan, shard.count, rows);
  const units = split.shards[shard.index].map((u) => u.id);
  runner.progress.log(
    `shard ${shard.index}/${shard.count}: ${units.length ? units.join(", ") : "nothing assigned"}`,
  );
  const summary = await runner.execute(plan, { only: shardKeys(split, shard.index) });
  runner.progress.end();
  const others = summary.notNeeded ? `, ${summary.notNeeded} left to other shards or the final run` : "";
  return {
    shard,
    units,
    summary,
    stageTable: summary.run ? runner.progress.summaryTable(plan.stages.map((s) => s.name)) : "",
    elapsedMs: runner.progress.elapsedMs(),
    line: `shard ${shard.index}/${shard.count}: ${summary.line}${others}`,
  };
}
