/**
 * One measured pipeline run, in its own process so its peak RSS and cold start are its own:
 *
 *   deno run -A pipeline/bench/child.ts SPEC.json
 *
 * SPEC ({@link ChildSpec}) names a config, `--set` overrides, rows, a cache directory and optionally a results
 * directory. The run is what `deno task ablate` does — plan, execute through the cached DAG runner, write the
 * results folder — with every stage wrapped (same name, version and params, so cache keys are unchanged) to
 * record per stage: wall time, frames, peak RSS and the backbone evaluations it made. The report
 * ({@link ChildReport}) is written as JSON to `SPEC.out`.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { loadConfig, selectRows } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { resolveUnits } from "../dag/registry.ts";
import { Runner } from "../dag/runner.ts";
import type { Plan, RowSpec } from "../dag/plan.ts";
import type { Artifacts, Stage } from "../dag/stage.ts";
import { evaluations } from "../backbone/runtime.ts";
import { writeAblateResults } from "../report/collect.ts";
import { STAGES } from "../stages/mod.ts";
import { loadedUNets } from "../backbone/sd/models.ts";
import { totalMacs, unetMacs, variantShapeOf } from "./flops.ts";
import { peakRss, resetPeakRss } from "./rss.ts";
import { readSafetensors } from "../tensor/safetensors.ts";

/** What to run. */
export interface ChildSpec {
  /** Config file (absolute, or relative to the repo root). */
  config: string;
  set: string[];
  /** Only these rows (default: all). */
  rows?: string[];
  cache: string;
  /** Write the ablate results folder here (label maps, metrics tables); omitted: no results written. */
  results?: string;
  /** Stages left out (e.g. "evaluate" for a dataset without GT). */
  skipStages?: string[];
  /** Where the report goes. */
  out: string;
}

/** Backbone evaluations of one graph variant. */
export interface VariantStats {
  calls: number;
  samples: number;
  ms: number;
  /** Σ samples × MACs per sample (UNet variants only; 0 for others). */
  macs: number;
  /** Σ samples × MACs per sample / MACs of the full UNet at the same latent (UNet variants only). */
  fullEquivalents: number;
}

/** Per-stage accounting. */
export interface StageStats {
  /** Instances computed. */
  run: number;
  wallMs: number;
  /** Frames of the computed instances (0 for stages without a frames input). */
  frames: number;
  /** Largest peak RSS of one instance (bytes; null where /proc is unavailable). */
  peakRss: number | null;
  variants: Record<string, VariantStats>;
}

/** The report of one child run. */
export interface ChildReport {
  spec: ChildSpec;
  /** Plan + execute + results, ms. */
  wallMs: number;
  resultsMs: number;
  summary: string;
  /** The runner's own per-stage accounting (its progress summary): instances run/cached and wall time. */
  runner: Record<string, { run: number; cached: number; wallMs: number }>;
  stages: Record<string, StageStats>;
  /** UNet MACs per sample of the full variant at each latent size seen, "h×w" → MACs. */
  fullMacs: Record<string, number>;
  peakRss: number | null;
  /** Time spent building UNet graphs missing from the graph cache (one-time work, ms). */
  graphBuildMs: number;
  /** Row → mIoU/mVC8/mVC16 (percent) where a metrics stage ran. */
  metrics: Record<string, { mIoU: number | null; mVC8: number | null; mVC16: number | null }>;
  /**
   * Row → sha256 over its label maps' tensor bytes (every clip, in plan order) and their json: two runs with
   * equal digests produced byte-identical labels.
   */
  labelDigests: Record<string, string>;
}

type Snapshot = Record<string, { calls: number; samples: number; ms: number }>;

/** Wrap `stage` so each computed instance is accounted in `stats` (the run itself is untouched). */
function instrument(
  stage: Stage,
  stats: Record<string, StageStats>,
  fullMacs: Record<string, number>,
  peak: { v: number | null },
): Stage {
  return {
    ...stage,
    async run(inputs: Record<string, Artifacts>, params, ctx) {
      const between = peakRss(); // the runner's own work since the last instance (store reads/writes)
      if (between !== null) peak.v = Math.max(peak.v ?? 0, between);
      resetPeakRss();
      const before: Snapshot = evaluations.snapshot();
      const t0 = performance.now();
      const out = await stage.run(inputs, params, ctx);
      const ms = performance.now() - t0;
      const p = peakRss();
      if (p !== null) peak.v = Math.max(peak.v ?? 0, p);
      const s = stats[stage.name] ??= { run: 0, wallMs: 0, frames: 0, peakRss: null, variants: {} };
      s.run++;
      s.wallMs += ms;
      if (p !== null) s.peakRss = Math.max(s.peakRss ?? 0, p);
      // Frame names, not the frames tensor: touching that would load a whole (streamed) video into memory.
      const names = (inputs.frames ?? (stage.name === "frames" ? out : undefined))?.json?.frames;
      if (Array.isArray(names)) s.frames += names.length;
      const size = (inputs.frames ?? out).json?.size as [number, number] | undefined;
      await account(s, before, size ? [size[0] / 8, size[1] / 8] : null, fullMacs);
      resetPeakRss();
      return out;
    },
  };
}

/** Add the evaluations made since `before` to `s`, weighting UNet variants by their MACs at `latent`. */
async function account(
  s: StageStats,
  before: Snapshot,
  latent: [number, number] | null,
  fullMacs: Record<string, number>,
) {
  const after = evaluations.snapshot();
  const unets = new Map((await loadedUNets()).map((u) => [u.variantName, u]));
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { calls: 0, samples: 0, ms: 0 };
    if (a.samples === b.samples && a.calls === b.calls) continue;
    const v = s.variants[name] ??= { calls: 0, samples: 0, ms: 0, macs: 0, fullEquivalents: 0 };
    const samples = a.samples - b.samples;
    v.calls += a.calls - b.calls;
    v.samples += samples;
    v.ms += a.ms - b.ms;
    const u = unets.get(name);
    if (u && latent) {
      const macs = totalMacs(unetMacs(u.layout, latent[0], latent[1], variantShapeOf(u.options, u.layout)));
      const full = totalMacs(unetMacs(u.layout, latent[0], latent[1]));
      fullMacs[`${latent[0]}×${latent[1]}`] = full;
      v.macs += samples * macs;
      v.fullEquivalents += (samples * macs) / full;
    }
  }
}

/**
 * Row → sha256 over its label maps' tensor bytes (every clip, in plan order) and their json, read from the cache
 * after `plan` ran: two runs with equal digests produced byte-identical labels.
 */
export function labelDigestsOf(runner: Runner, plan: Plan): Record<string, string> {
  const labelDigests: Record<string, string> = {};
  for (const row of plan.rows) {
    const hash = createHash("sha256");
    let n = 0;
    for (const slot of row.slots) {
      const stage = plan.stages.find((st) => st.name === slot.stage);
      if (stage?.role !== "labels") continue;
      // Tensor bytes, not file hashes: a safetensors header names its cache key, which differs between runs.
      const dir = runner.store.entryDir(stage.name, slot.key);
      for (const rel of Object.keys(runner.store.read(stage.name, slot.key).manifest.files).sort()) {
        if (!rel.endsWith(".safetensors")) {
          hash.update(`${slot.unit}/${rel}\n`).update(fs.readFileSync(path.join(dir, rel)));
          continue;
        }
        const st = readSafetensors(path.join(dir, rel));
        for (const name of st.keys().sort()) {
          const t = st.get(name);
          hash.update(`${slot.unit}/${rel}/${name}:${t.dtype}:${t.shape.join("x")}\n`);
          hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        }
        n++;
      }
    }
    if (n) labelDigests[row.name] = hash.digest("hex");
  }
  return labelDigests;
}

/** Run a spec; returns (and writes) the report. */
export async function runChild(spec: ChildSpec): Promise<ChildReport> {
  const t0 = performance.now();
  const full = loadConfig(path.resolve(REPO_ROOT, spec.config), { set: spec.set });
  const config = spec.rows?.length ? selectRows(full, spec.rows) : full;
  const stats: Record<string, StageStats> = {}, fullMacs: Record<string, number> = {};
  const peak = { v: peakRss() };
  const skip = new Set(spec.skipStages ?? []);
  const stages = STAGES.filter((s) => !skip.has(s.name)).map((s) =>
    instrument(s as Stage, stats, fullMacs, peak)
  );
  const rows: RowSpec[] = [];
  for (const r of config.rows) {
    const cfg = r.config as unknown as Record<string, unknown>;
    rows.push({ name: r.name, config: cfg, units: await resolveUnits(cfg) });
  }
  const runner = new Runner({ cacheDir: spec.cache, root: REPO_ROOT });
  const plan = await runner.plan(stages, rows);
  const summary = await runner.execute(plan);
  runner.progress.end();
  const t1 = performance.now();
  if (spec.results) await writeAblateResults(runner, plan, config, spec.results);
  const resultsMs = performance.now() - t1;
  const metrics: ChildReport["metrics"] = {};
  for (const row of plan.rows) {
    const slot = row.slots.find((s) => plan.stages.find((st) => st.name === s.stage)?.role === "metrics");
    if (!slot) continue;
    const m = (await runner.load(plan, slot.key)).json.metrics as Record<string, number | null> | undefined;
    if (m) metrics[row.name] = { mIoU: m.mIoU ?? null, mVC8: m.mVC8 ?? null, mVC16: m.mVC16 ?? null };
  }
  const graphBuildMs = (await loadedUNets()).reduce((a, u) => a + (u.graph.built ? u.graph.buildMs : 0), 0);
  const end = peakRss();
  const labelDigests = labelDigestsOf(runner, plan); // after the peak is read: it loads whole label files
  const report: ChildReport = {
    spec,
    wallMs: performance.now() - t0,
    resultsMs,
    summary: summary.line,
    runner: Object.fromEntries(
      [...runner.progress.stats].map(([k, v]) => [k, { run: v.run + v.corrupt, cached: v.cached, wallMs: v.wallMs }]),
    ),
    stages: stats,
    fullMacs,
    peakRss: end === null ? peak.v : Math.max(peak.v ?? 0, end),
    graphBuildMs,
    metrics,
    labelDigests,
  };
  fs.mkdirSync(path.dirname(spec.out), { recursive: true });
  fs.writeFileSync(spec.out, JSON.stringify(report, null, 1));
  return report;
}

if (import.meta.main) {
  const spec = JSON.parse(fs.readFileSync(Deno.args[0], "utf8")) as ChildSpec;
  await runChild(spec);
  Deno.exit(0);
}
