/**
 * Instantiation of a pipeline (a list of Stage objects) over the rows of a config and their units (clips),
 * with cache keys:
 *   key = sha256(stage name, version, values of the params it reads (+ unit/units), upstream keys,
 *                content identities of its input files).
 * Instances with equal keys are the same computation, so rows that need an identical stage instance share it.
 * @module
 */
import * as path from "node:path";
import type { Stage } from "./stage.ts";
import { canonicalJson, sha256Hex } from "./hash.ts";
import type { FileIdentity } from "./files.ts";

/** One row of a config, as the runner sees it: its merged config and the units (clips) it covers. */
export interface RowSpec {
  name: string;
  config: Record<string, unknown>;
  units: string[];
}

/** A stage applied to one unit (or to a whole row, for row-scoped stages). */
export interface Instance {
  key: string;
  stage: Stage;
  /** Unit name (null for row-scoped stages). */
  unit: string | null;
  /** Exactly what `run` receives. */
  params: Record<string, unknown>;
  /** Input name → upstream instance key. */
  upstream: Record<string, string>;
  /** Rows that use this instance (first one first). */
  rows: string[];
}

/** Where an instance sits in a row. */
export interface RowSlot {
  stage: string;
  unit: string | null;
  key: string;
}

/** A fully keyed DAG: unique instances in topological order, and each row's view of them. */
export interface Plan {
  /** Stages in topological order. */
  stages: Stage[];
  /** Unique instances by key, inserted in a topological order (row by row). */
  instances: Map<string, Instance>;
  rows: { name: string; units: string[]; slots: RowSlot[] }[];
}

const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** Check a stage list (unique names, known upstreams, no cycles) and sort it topologically (stable). */
export function orderStages(stages: readonly Stage[]): Stage[] {
  const byName = new Map<string, Stage>();
  for (const s of stages) {
    if (!STAGE_NAME.test(s.name)) throw new Error(`stage name "${s.name}" must match ${STAGE_NAME}`);
    if (byName.has(s.name)) throw new Error(`two stages are named "${s.name}"`);
    byName.set(s.name, s);
  }
  for (const s of stages) {
    for (const u of s.upstream) {
      if (!byName.has(u)) throw new Error(`stage "${s.name}" has unknown upstream "${u}"`);
    }
  }
  const out: Stage[] = [];
  const state = new Map<string, 1 | 2>(); // 1 = on the DFS stack, 2 = done
  const visit = (s: Stage, trail: string[]) => {
    if (state.get(s.name) === 2) return;
    if (state.get(s.name) === 1) throw new Error(`stage cycle: ${[...trail, s.name].join(" → ")}`);
    state.set(s.name, 1);
    for (const u of s.upstream) visit(byName.get(u)!, [...trail, s.name]);
    state.set(s.name, 2);
    out.push(s);
  };
  for (const s of stages) visit(s, []);
  return out;
}

/** Value at a dotted path ("kmeans.k"); `undefined` when absent. */
export function getPath(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Options for `buildPlan`. */
export interface PlanOptions {
  files: FileIdentity;
  /** Repo root: string params inside it enter keys relative to it, so a moved clone keeps its cache. */
  root?: string;
}

/** Instantiate the stages for every (row, unit) and compute all keys. */
export async function buildPlan(
  stages: readonly Stage[],
  rows: readonly RowSpec[],
  opts: PlanOptions,
): Promise<Plan> {
  const ordered = orderStages(stages);
  const instances = new Map<string, Instance>();
  const plan: Plan = { stages: ordered, instances, rows: [] };
  for (const row of rows) {
    const slots: RowSlot[] = [];
    const keyOf = new Map<string, string>(); // `${stage}/${unit}` or `${stage}` → key
    for (const stage of ordered) {
      const units: (string | null)[] = (stage.scope ?? "unit") === "row" ? [null] : row.units;
      for (const unit of units) {
        const params = readParams(stage, row, unit, ordered);
        const upstream: Record<string, string> = {};
        for (const up of stage.upstream) {
          const upStage = ordered.find((s) => s.name === up)!;
          if ((upStage.scope ?? "unit") === "row") upstream[up] = keyOf.get(up)!;
          else if (unit !== null) upstream[up] = keyOf.get(`${up}/${unit}`)!;
          else for (const u of row.units) upstream[`${up}/${u}`] = keyOf.get(`${up}/${u}`)!;
        }
        const files = stage.inputFiles ? await stage.inputFiles(params) : [];
        const identities = files.map((f) => opts.files.identify(f, stage.name));
        const key = sha256Hex(canonicalJson({
          stage: stage.name,
          version: stage.version,
          params: relativise(params, opts.root),
          upstream,
          files: identities,
        }));
        keyOf.set(unit === null ? stage.name : `${stage.name}/${unit}`, key);
        slots.push({ stage: stage.name, unit, key });
        const existing = instances.get(key);
        if (existing) {
          if (!existing.rows.includes(row.name)) existing.rows.push(row.name);
        } else instances.set(key, { key, stage, unit, params, upstream, rows: [row.name] });
      }
    }
    plan.rows.push({ name: row.name, units: [...row.units], slots });
  }
  return plan;
}

function readParams(
  stage: Stage,
  row: RowSpec,
  unit: string | null,
  all: readonly Stage[],
): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const p of stage.params) {
    if (p === "unit" || p === "units") continue;
    const v = getPath(row.config, p);
    if (v === undefined) {
      throw new Error(`stage "${stage.name}" reads config key "${p}", which the config does not have`);
    }
    params[p] = structuredClone(v);
  }
  if (unit !== null) params.unit = unit;
  else if (
    stage.params.includes("units") ||
    stage.upstream.some((u) => (all.find((s) => s.name === u)?.scope ?? "unit") === "unit")
  ) {
    // Only row stages that aggregate units depend on the unit list; others (e.g. preparing a model once)
    // stay shareable between configs with different clips.
    params.units = [...row.units];
  }
  return params;
}

/** Replace a `root` prefix in string values by "$ROOT" (for keys only; stages get the real paths). */
function relativise(v: unknown, root: string | undefined): unknown {
  if (!root) return v;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  const walk = (x: unknown): unknown => {
    if (typeof x === "string") {
      return x === root ? "$ROOT" : x.startsWith(prefix) ? "$ROOT/" + x.slice(prefix.length) : x;
    }
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === "object") {
      return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    }
    return x;
  };
  return walk(v);
}

/** Status of an instance before running: in the cache, to be computed, or missing but not needed. */
export type InstanceStatus = "cached" | "run" | "skip";

/** Human-readable plan: per row and stage, how many instances are cached and which would run. */
export function formatPlan(
  plan: Plan,
  status: Map<string, InstanceStatus>,
  titles: Record<string, string> = {},
): string {
  const lines: string[] = [];
  const width = Math.max(5, ...plan.stages.map((s) => s.name.length));
  for (const row of plan.rows) {
    const title = titles[row.name] ? ` — ${titles[row.name]}` : "";
    lines.push(`row ${row.name}${title} (${row.units.length} unit${row.units.length === 1 ? "" : "s"})`);
    if (!row.slots.length) lines.push("  (no stages registered)");
    for (const stage of plan.stages) {
      const slots = row.slots.filter((s) => s.stage === stage.name);
      if (!slots.length) continue;
      const count = { cached: 0, run: 0, skip: 0 };
      const running: string[] = [];
      const sharedWith = new Set<string>();
      for (const s of slots) {
        const st = status.get(s.key) ?? "run";
        count[st]++;
        if (st === "run") running.push(s.unit ?? "all units");
        const first = plan.instances.get(s.key)!.rows[0];
        if (first !== row.name) sharedWith.add(first);
      }
      const parts: string[] = [];
      if (count.cached) parts.push(`${count.cached} cached`);
      if (count.run) {
        parts.push(
          `${count.run} would run` + (count.cached || count.skip ? ` (${abbreviate(running)})` : ""),
        );
      }
      if (count.skip) parts.push(`${count.skip} not needed`);
      const shared = sharedWith.size ? `  [shared with row ${[...sharedWith].join(", ")}]` : "";
      lines.push(`  ${stage.name.padEnd(width)}  ${parts.join(", ")}${shared}`);
    }
  }
  const all = [...plan.instances.values()];
  const n = (st: InstanceStatus) => all.filter((i) => (status.get(i.key) ?? "run") === st).length;
  const slots = plan.rows.reduce((a, r) => a + r.slots.length, 0);
  lines.push(
    `plan: ${plan.rows.length} rows, ${slots} stage instances, ${all.length} unique: ${n("cached")} cached, ${
      n("run")
    } would run` +
      (n("skip") ? `, ${n("skip")} not needed` : ""),
  );
  return lines.join("\n");
}

function abbreviate(names: string[]): string {
  return names.length <= 4 ? names.join(", ") : `${names.slice(0, 3).join(", ")}, … +${names.length - 3}`;
}
