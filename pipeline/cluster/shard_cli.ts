/**
 * The `--shard I/N` part of the `ablate` and `segment` commands: split the plan (pipeline/dag/shard.ts) with the
 * expected costs of costs.ts, compute this shard's instances into the shared cache and report; or, with --plan,
 * show the split.
 * @module
 */
import type { Plan, RowSpec } from "../dag/plan.ts";
import type { Runner } from "../dag/runner.ts";
import { fmtDuration } from "../dag/progress.ts";
import { formatSplit, parseShard, shardKeys, type ShardSpec, type ShardSplit, splitPlan } from "../dag/shard.ts";
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
export function shardPlanText(runner: Runner, plan: Plan, shard: ShardSpec, rows: readonly RowSpec[]): string {
  return formatSplit(splitFor(plan, shard.count, rows), runner.status(plan), shard.index);
}

/** Compute shard `shard` of the plan; prints one summary line. */
export async function runShard(
  runner: Runner,
  plan: Plan,
  shard: ShardSpec,
  rows: readonly RowSpec[],
  command: string,
): Promise<void> {
  const split = splitFor(plan, shard.count, rows);
  const mine = split.shards[shard.index];
  runner.progress.log(
    `shard ${shard.index}/${shard.count}: ${mine.length ? mine.map((u) => u.id).join(", ") : "nothing assigned"}`,
  );
  const summary = await runner.execute(plan, { only: shardKeys(split, shard.index) });
  runner.progress.end();
  if (summary.run) console.error(runner.progress.summaryTable(plan.stages.map((s) => s.name)));
  const others = summary.notNeeded ? `, ${summary.notNeeded} left to other shards or the final run` : "";
  console.error(
    `${command}: shard ${shard.index}/${shard.count}: ${summary.line}${others} (${
      fmtDuration(runner.progress.elapsedMs())
    })`,
  );
}
