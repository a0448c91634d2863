/**
 * Read access to the cached artifacts of a config's run — the one door through which notebooks and
 * `deno task figures` see pipeline results. It plans the config exactly as `ablate` does (same stages, same
 * `--set` overrides, same cache keys via `Runner.plan`) and reads entries by (stage, row, clip) from the
 * runner's verified store. It never recomputes behind the caller's back: a missing entry is a
 * `MissingArtifactError` that says which `ablate` command produces it; only `compute()` (used where a figure
 * genuinely needs a variant, e.g. K-Means with another K) runs stages, through `Runner.load`.
 *
 *   const run = await openRun("configs/table2.yaml", { cache: "results/cache" });
 *   const a = await run.load("features", "F", run.clips[0]);   // {tensors: {q6, q7, q8}, json: {grid, …}}
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { type ConfigRow, loadConfig, type LoadedConfig } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { resolveUnits } from "../dag/registry.ts";
import { Runner } from "../dag/runner.ts";
import type { Plan, RowSlot, RowSpec } from "../dag/plan.ts";
import type { Artifacts, Stage } from "../dag/stage.ts";
import { STAGES } from "../stages/mod.ts";

/** Options of `openRun`. */
export interface OpenRunOptions {
  /** Cache directory (default $VIDSEG_CACHE, else <repo>/results/cache). */
  cache?: string;
  /** `KEY=VALUE` overrides exactly as passed to `ablate --set` (they change cache keys). */
  set?: readonly string[];
  /** Base of a relative config path (default: the current directory, then the repo root). */
  cwd?: string;
  /** Stage list (default: the method's stages, pipeline/stages/mod.ts). */
  stages?: readonly Stage[];
}

/** An artifact the caller asked for is not in the cache. */
export class MissingArtifactError extends UserError {
  override name = "MissingArtifactError";
}

/** A planned config with cache access by (stage, row, clip). */
export interface RunView {
  /** The loaded config (rows with titles, paper numbers and merged configs). */
  readonly config: LoadedConfig;
  /** Absolute path of the config file. */
  readonly configFile: string;
  readonly cacheDir: string;
  readonly set: readonly string[];
  /** Row names in config order. */
  readonly rows: string[];
  /** Clips of the first row (every row of the method's configs covers the same clips). */
  readonly clips: string[];
  readonly runner: Runner;
  readonly plan: Plan;
  /** A row's config entry (UserError for an unknown row). */
  row(name: string): ConfigRow;
  /** Value of a dotted config key in a row ("modulation.latent_blending"). */
  param(row: string, dotted: string): unknown;
  /** True when the (stage, row, clip) entry is in the cache. Row-scoped stages take no clip. */
  has(stage: string, row: string, clip?: string): boolean;
  /** Verified cached artifacts; MissingArtifactError (with the command that produces them) when absent. */
  load(stage: string, row: string, clip?: string): Promise<Artifacts>;
  /** Artifacts through `Runner.load`: computed (with any missing upstream) and stored when absent. */
  compute(stage: string, row: string, clip?: string): Promise<Artifacts>;
  /** The `ablate` command line that fills the cache for `rows` (all rows when omitted). */
  ablateCommand(rows?: readonly string[]): string;
  /** The same config and cache with more overrides appended (e.g. "kmeans.k=5"). */
  withSet(extra: readonly string[]): Promise<RunView>;
}

/** The config file as an absolute path: relative to `cwd` when it exists there, else to the repo root. */
export function resolveConfigFile(file: string, cwd = Deno.cwd()): string {
  if (path.isAbsolute(file)) return file;
  const here = path.resolve(cwd, file);
  return fs.existsSync(here) ? here : path.resolve(REPO_ROOT, file);
}

/** The default cache directory: $VIDSEG_CACHE, else <repo>/results/cache (as `ablate`). */
export function defaultCacheDir(): string {
  return Deno.env.get("VIDSEG_CACHE") || path.join(REPO_ROOT, "results", "cache");
}

/** Plan `configFile` over the cache, as `ablate` would, without computing anything. */
export async function openRun(configFile: string, opts: OpenRunOptions = {}): Promise<RunView> {
  const file = resolveConfigFile(configFile, opts.cwd);
  const set = [...(opts.set ?? [])];
  const config = loadConfig(file, { set });
  const cacheDir = path.resolve(opts.cache ?? defaultCacheDir());
  if (!fs.existsSync(cacheDir)) {
    throw new MissingArtifactError(
      `${cacheDir}: cache directory not found (fill it with: ${ablateLine(file, cacheDir, set)})`,
    );
  }
  const stages = [...(opts.stages ?? STAGES)];
  const specs: RowSpec[] = [];
  for (const r of config.rows) {
    const cfg = r.config as unknown as Record<string, unknown>;
    specs.push({ name: r.name, config: cfg, units: await resolveUnits(cfg) });
  }
  // Reading prints nothing; only compute() reports progress (stderr), as ablate does.
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const plan = await runner.plan(stages, specs);
  const memo = new Map<string, Artifacts>();

  const row = (name: string): ConfigRow => {
    const r = config.rows.find((x) => x.name === name);
    if (!r) {
      throw new UserError(`${file}: no row "${name}" (rows: ${config.rows.map((x) => x.name).join(", ")})`);
    }
    return r;
  };
  const slotOf = (stage: string, rowName: string, clip?: string): RowSlot => {
    row(rowName);
    const slots = plan.rows.find((r) => r.name === rowName)!.slots.filter((s) => s.stage === stage);
    if (!slots.length) {
      throw new UserError(
        `no stage "${stage}" in the pipeline (stages: ${plan.stages.map((s) => s.name).join(", ")})`,
      );
    }
    if (slots[0].unit === null) return slots[0];
    if (clip === undefined) throw new UserError(`stage "${stage}" is per clip: name the clip`);
    const s = slots.find((x) => x.unit === clip);
    if (!s) {
      throw new UserError(
        `row ${rowName} has no clip "${clip}" (clips: ${slots.map((x) => x.unit).join(", ")})`,
      );
    }
    return s;
  };
  const what = (stage: string, rowName: string, clip?: string) =>
    `"${stage}" of row ${rowName}${clip === undefined ? "" : `, clip ${clip}`}`;

  const view: RunView = {
    config,
    configFile: file,
    cacheDir,
    set,
    rows: config.rows.map((r) => r.name),
    clips: specs[0]?.units ?? [],
    runner,
    plan,
    row,
    param: (rowName, dotted) => getDotted(row(rowName).config, dotted),
    has: (stage, rowName, clip) => runner.store.has(stage, slotOf(stage, rowName, clip).key),
    load(stage, rowName, clip) {
      const slot = slotOf(stage, rowName, clip);
      const hit = memo.get(slot.key);
      if (hit) return Promise.resolve(hit);
      if (!runner.store.has(stage, slot.key)) {
        throw new MissingArtifactError(
          `${what(stage, rowName, clip)} is not in the cache ${cacheDir} (produce it with: ${
            ablateLine(file, cacheDir, set, [rowName])
          })`,
        );
      }
      let a: Artifacts;
      try {
        a = runner.store.read(stage, slot.key).artifacts;
      } catch (e) {
        throw new MissingArtifactError(
          `${what(stage, rowName, clip)}: ${(e as Error).message} (recompute it with: ${
            ablateLine(file, cacheDir, set, [rowName])
          })`,
        );
      }
      memo.set(slot.key, a);
      return Promise.resolve(a);
    },
    async compute(stage, rowName, clip) {
      const slot = slotOf(stage, rowName, clip);
      const hit = memo.get(slot.key);
      if (hit) return hit;
      const a = await runner.load(plan, slot.key);
      memo.set(slot.key, a);
      return a;
    },
    ablateCommand: (rows) => ablateLine(file, cacheDir, set, rows),
    withSet: (extra) => openRun(file, { ...opts, cache: cacheDir, set: [...set, ...extra] }),
  };
  return view;
}

/** Value at a dotted path of a nested record (undefined when absent). */
export function getDotted(obj: unknown, dotted: string): unknown {
  let cur = obj;
  for (const k of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

const shellWord = (s: string) => (/^[A-Za-z0-9_./=:,@+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

function ablateLine(file: string, cache: string, set: readonly string[], rows?: readonly string[]): string {
  const rel = (p: string) => (p.startsWith(REPO_ROOT + path.sep) ? path.relative(REPO_ROOT, p) : p);
  const words = ["deno", "task", "ablate", rel(file), "--cache", rel(cache)];
  for (const s of set) words.push("--set", s);
  if (rows?.length) words.push("--rows", rows.join(","));
  return words.map(shellWord).join(" ");
}

/** Flattened leaves of a row config ("a.b" → value as JSON), for comparing rows. */
function leaves(obj: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, JSON.stringify(obj));
  return out;
}

/** Number of config leaves in which two rows differ. */
export function rowDistance(run: RunView, a: string, b: string): number {
  const la = leaves(run.row(a).config), lb = leaves(run.row(b).config);
  let d = 0;
  for (const k of new Set([...la.keys(), ...lb.keys()])) if (la.get(k) !== lb.get(k)) d++;
  return d;
}

/**
 * The two rows to contrast for latent blending: [without, with], the closest pair (fewest differing config
 * keys; config order breaks ties) whose `modulation.latent_blending` is false / true. For Table 2: B, C.
 */
export function blendingPair(run: RunView): [string, string] {
  const off = run.rows.filter((r) => run.param(r, "modulation.latent_blending") === false);
  const on = run.rows.filter((r) => run.param(r, "modulation.latent_blending") === true);
  let best: [string, string] | null = null, bestD = Infinity;
  for (const a of off) {
    for (const b of on) {
      const d = rowDistance(run, a, b);
      if (d < bestD) (best = [a, b], bestD = d);
    }
  }
  if (!best) {
    throw new UserError(
      `${run.configFile}: no two rows differ in modulation.latent_blending (name them explicitly)`,
    );
  }
  return best;
}

/** The baseline and full rows of a comparison: A and F when the config has them, else its first and last row. */
export function comparisonRows(run: RunView): [string, string] {
  if (run.rows.includes("A") && run.rows.includes("F")) return ["A", "F"];
  return [run.rows[0], run.rows[run.rows.length - 1]];
}
