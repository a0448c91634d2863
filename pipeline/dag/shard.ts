/**
 * Sharding a plan over n processes or hosts that share one cache.
 *
 * A work unit is one (row, clip) chain: the clip-scoped stage instances of that row for that clip. An instance
 * shared by several chains (rows agreeing up to some stage share its instance, see plan.ts) belongs to the first
 * chain in plan order that uses it, so each instance belongs to exactly one unit and a shard always owns whole
 * instances. A unit's expected cost is Σ over the instances it owns of frames(clip) × the stage's weight (default
 * 1, i.e. frames × instances; see pipeline/cluster/costs.ts for measured weights). Units are assigned by
 * longest-processing-time-first: largest cost first, each to the least loaded shard (ties: lower index).
 *
 * The split depends on the plan alone, never on the cache: every shard computes the same split whenever it starts,
 * so shards started hours apart, or resubmitted, agree. Row-scoped instances (metrics over all clips) belong to no
 * shard: the final unsharded run computes them, with everything a shard left missing. A shard that needs an
 * instance another shard owns (a shared upstream) computes it itself under the instance's lock or waits for it.
 * @module
 */
import type { InstanceStatus, Plan } from "./plan.ts";
import { UserError } from "../errors.ts";

/** `--shard i/n`: this process runs shard `index` (0-based) of `count`. */
export interface ShardSpec {
  /** Which shard, 0 ≤ index < count. */
  index: number;
  /** How many shards the work is split into. */
  count: number;
}

/** Parse "i/n" (0 ≤ i < n); `option` names the flag or variable in the error. */
export function parseShard(text: string, option = "--shard"): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UserError(
      `${option} ${text}: expected I/N with 0 ≤ I < N, e.g. 0/4 (shards are numbered from 0)`,
    );
  }
  return { index, count };
}

/** One (row, clip) chain and the instances it owns. */
export interface WorkUnit {
  /** "row/clip". */
  id: string;
  row: string;
  unit: string;
  /** Keys of the instances this unit owns (plan order). */
  keys: string[];
  frames: number;
  /** Expected cost: Σ frames × stage weight over the owned instances. */
  cost: number;
}

/** How a plan is split into shards. */
export interface ShardSplit {
  count: number;
  /** Every work unit, in plan order. */
  units: WorkUnit[];
  /** Units of each shard (plan order within a shard). */
  shards: WorkUnit[][];
  /** Expected cost of each shard. */
  costs: number[];
  /** Row-scoped instances: computed by the final unsharded run. */
  rowScoped: string[];
}

/** Options of {@link splitPlan}. */
export interface SplitOptions {
  /** Frames of a clip in a row (its dataset config may limit them); default 1. */
  frames?(row: string, unit: string): number;
  /** Relative cost per frame of each stage (default 1). */
  weights?: Readonly<Record<string, number>>;
}

/** Split a plan into `count` shards of balanced expected cost (deterministic: depends on the plan only). */
export function splitPlan(plan: Plan, count: number, opts: SplitOptions = {}): ShardSplit {
  const owner = new Map<string, WorkUnit>();
  const units: WorkUnit[] = [];
  const rowScoped: string[] = [];
  for (const row of plan.rows) {
    const byUnit = new Map<string, WorkUnit>();
    for (const slot of row.slots) {
      if (slot.unit === null) {
        if (!rowScoped.includes(slot.key)) rowScoped.push(slot.key);
        continue;
      }
      let wu = byUnit.get(slot.unit);
      if (!wu) {
        const frames = Math.max(1, opts.frames?.(row.name, slot.unit) ?? 1);
        wu = { id: `${row.name}/${slot.unit}`, row: row.name, unit: slot.unit, keys: [], frames, cost: 0 };
        byUnit.set(slot.unit, wu);
        units.push(wu);
      }
      if (owner.has(slot.key)) continue;
      owner.set(slot.key, wu);
      wu.keys.push(slot.key);
      wu.cost += wu.frames * (opts.weights?.[slot.stage] ?? 1);
    }
  }
  const order = units.map((u, i) => ({ u, i })).sort((a, b) => b.u.cost - a.u.cost || a.i - b.i);
  const costs = new Array<number>(count).fill(0);
  const members: { u: WorkUnit; i: number }[][] = Array.from({ length: count }, () => []);
  for (const item of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (costs[s] < costs[best]) best = s;
    costs[best] += item.u.cost;
    members[best].push(item);
  }
  const shards = members.map((m) => m.sort((a, b) => a.i - b.i).map((x) => x.u));
  return { count, units, shards, costs, rowScoped: rowScoped.filter((k) => !owner.has(k)) };
}

/** Instance keys owned by shard `index`. */
export function shardKeys(split: ShardSplit, index: number): Set<string> {
  return new Set(split.shards[index].flatMap((u) => u.keys));
}

/** Keys of shard `index` still to compute (status "run"): empty when the shard is finished. */
export function shardRemaining(
  split: ShardSplit,
  index: number,
  status: Map<string, InstanceStatus>,
): string[] {
  return [...shardKeys(split, index)].filter((k) => status.get(k) === "run");
}

/** The `--plan --shard` text: per shard its units, expected cost and how much is left. */
export function formatSplit(
  split: ShardSplit,
  status: Map<string, InstanceStatus>,
  current?: number,
): string {
  const total = split.costs.reduce((a, b) => a + b, 0) || 1;
  const lines = [
    `split into ${split.count} shard${split.count === 1 ? "" : "s"} by (row, clip) chains ` +
    `(expected cost = frames × stage weight, over the instances each chain owns):`,
  ];
  split.shards.forEach((units, s) => {
    const keys = units.flatMap((u) => u.keys);
    const left = keys.filter((k) => status.get(k) === "run").length;
    const cached = keys.filter((k) => status.get(k) === "cached").length;
    const mark = s === current ? "→" : " ";
    const names = units.length ? units.map((u) => u.id).join(", ") : "(nothing)";
    lines.push(
      `${mark} shard ${s}/${split.count}: cost ${fmtCost(split.costs[s])} (${
        (100 * split.costs[s] / total).toFixed(0)
      }%), ` +
        `${keys.length} instances: ${left} to run, ${cached} cached — ${names}`,
    );
  });
  if (split.rowScoped.length) {
    const left = split.rowScoped.filter((k) => status.get(k) === "run").length;
    lines.push(
      `  final run (no --shard): ${split.rowScoped.length} row-scoped instances (${left} to run), results`,
    );
  }
  return lines.join("\n");
}

function fmtCost(c: number): string {
  return Number.isInteger(c) ? String(c) : c.toFixed(1);
}
