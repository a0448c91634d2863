/**
 * The stage registry: stage modules register their Stage objects here at import time, and the CLIs build
 * the pipeline from whatever is registered. Registering is one call:
 *
 *   import { registerStages } from "../dag/registry.ts";
 *   registerStages(framesStage, invertStage, featuresStage, …);
 *
 * `pipeline/stages/mod.ts` (imported by the CLIs when it exists) should import every stage module.
 * The registry also maps a dataset kind to a *unit resolver*: the function that lists the units (clips) a
 * row covers. A default resolver handles explicit clip lists and the common folder layouts.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import type { Stage } from "./stage.ts";
import { orderStages } from "./plan.ts";

/** Lists the units (clip names) of a row from its merged config. */
export type UnitResolver = (config: Record<string, unknown>) => string[] | Promise<string[]>;

const stages = new Map<string, Stage>();
const resolvers = new Map<string, UnitResolver>();

/** Register stages (idempotent for the same object; a different stage under a taken name is an error). */
export function registerStages(...list: Stage[]): void {
  for (const s of list) {
    const had = stages.get(s.name);
    if (had && had !== s) {
      throw new Error(`registry: a different stage named "${s.name}" is already registered`);
    }
    stages.set(s.name, s);
  }
}

/** All registered stages, topologically ordered (throws on unknown upstreams or cycles). */
export function registeredStages(): Stage[] {
  return orderStages([...stages.values()]);
}

/** Use `fn` to list the units of rows whose `dataset.kind` is `kind`. */
export function registerUnitResolver(kind: string, fn: UnitResolver): void {
  resolvers.set(kind, fn);
}

/** Forget everything (tests). */
export function clearRegistry(): void {
  stages.clear();
  resolvers.clear();
}

/** Units of a row: the registered resolver for its dataset kind, else `defaultUnits`. */
export function resolveUnits(config: Record<string, unknown>): Promise<string[]> {
  const kind = String((config.dataset as Record<string, unknown> | undefined)?.kind ?? "");
  return Promise.resolve((resolvers.get(kind) ?? defaultUnits)(config));
}

/**
 * Default unit listing: an explicit `dataset.clips` list as given; for `clips: all`, kind "frames" is one
 * unit named after its folder, otherwise the clips of `<root>/clips.json` (CamVid layout: a list of names or
 * of {clip}) or else the sub-folders of `dataset.root` (sorted).
 */
export function defaultUnits(config: Record<string, unknown>): string[] {
  const ds = (config.dataset ?? {}) as { kind?: string; root?: string; clips?: unknown };
  if (Array.isArray(ds.clips)) return ds.clips.map(String);
  const root = String(ds.root ?? "");
  if (ds.kind === "frames") return [path.basename(root)];
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new UserError(`dataset.root: ${root}: directory not found (needed to list its clips)`);
  }
  const listing = path.join(root, "clips.json");
  if (fs.existsSync(listing)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(listing, "utf8"));
    } catch (e) {
      throw new UserError(`${listing}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new UserError(`${listing}: expected a list of clips`);
    return parsed.map((c) => (typeof c === "string" ? c : String((c as { clip?: unknown })?.clip ?? "")));
  }
  return fs.readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
}
