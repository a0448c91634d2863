/**
 * What each optimization of the `optimized` modulation schedule saves, measured on one clip of one row: the
 * modulate stage's work is rerun in this process on the cached upstream artifacts (frames, invert, knn) with the
 * optimizations switched on one after another, and every variant's difference maps and labels are compared
 * with the reference schedule's, byte for byte.
 * @module
 */
import * as path from "node:path";
import { loadConfig, selectRows } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { resolveUnits } from "../dag/registry.ts";
import { Runner } from "../dag/runner.ts";
import type { Artifacts, StageContext } from "../dag/stage.ts";
import { evaluations } from "../backbone/runtime.ts";
import { STAGES } from "../stages/mod.ts";
import { loadedUNets } from "../backbone/sd/models.ts";
import { INJECT_POSITIONS, sdGroupOptions } from "../backbone/sd/backbone.ts";
import { modulateClip, type OptimizedOptions } from "../stages/modulate.ts";
import { backboneOf, modulationOf } from "../stages/params.ts";
import { labelsStage } from "../stages/labels.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { totalMacs, unetMacs, variantShapeOf } from "./flops.ts";

/** One measured variant of the modulate stage. */
export interface BreakdownRow {
  name: string;
  options: OptimizedOptions | null;
  wallMs: number;
  /** UNet sample-evaluations per frame (raw count) and FLOP-weighted (in full-UNet equivalents). */
  unetSamplesPerFrame: number;
  unetFullEquivalentsPerFrame: number;
  vaeDecodesPerFrame: number;
  /** Fractions of bytes equal to the reference schedule's. */
  diffEqual: number;
  labelsEqual: number;
}

/** Result of {@link modulateBreakdown}. */
export interface Breakdown {
  row: string;
  clip: string;
  frames: number;
  labels: number;
  rows: BreakdownRow[];
}

const quiet: StageContext = { progress() {}, log() {} };

function equalFraction(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return a.length ? eq / a.length : 1;
}

/** Evaluations since the last reset: raw UNet samples, full-UNet equivalents, VAE decodes. */
async function counts(latent: [number, number]): Promise<{ samples: number; full: number; decodes: number }> {
  const unets = new Map((await loadedUNets()).map((u) => [u.variantName, u]));
  let samples = 0, full = 0, decodes = 0;
  for (const [name, c] of Object.entries(evaluations.snapshot())) {
    const u = unets.get(name);
    if (u) {
      samples += c.samples;
      const m = totalMacs(unetMacs(u.layout, latent[0], latent[1], variantShapeOf(u.options, u.layout)));
      full += (c.samples * m) / totalMacs(unetMacs(u.layout, latent[0], latent[1]));
    } else if (name.endsWith(".decode")) decodes += c.samples;
  }
  return { samples, full, decodes };
}

/**
 * Rerun `row`'s modulate stage on its first clip with the optimizations added one at a time; upstream artifacts
 * come from (or are computed into) `cache`.
 */
export async function modulateBreakdown(
  o: { config: string; set: string[]; row: string; cache: string },
  log: (msg: string) => void,
): Promise<Breakdown> {
  const config = selectRows(loadConfig(path.resolve(REPO_ROOT, o.config), { set: o.set }), [o.row]);
  const cfg = config.rows[0].config as unknown as Record<string, unknown>;
  const units = await resolveUnits(cfg);
  const runner = new Runner({ cacheDir: o.cache, root: REPO_ROOT });
  const plan = await runner.plan(STAGES, [{ name: o.row, config: cfg, units }]);
  const slot = (stage: string) => plan.rows[0].slots.find((s) => s.stage === stage && s.unit === units[0])!;
  const inputs: Record<string, Artifacts> = {};
  for (const s of ["frames", "invert", "knn"]) inputs[s] = await runner.load(plan, slot(s).key);
  const p: Record<string, unknown> = {
    ...plan.instances.get(slot("modulate").key)!.params,
    schedule: "optimized",
  };
  const labelParams = plan.instances.get(slot("labels").key)!.params;
  const z0 = inputs.invert.tensors.z0 as Tensor<"F32">;
  const N = z0.shape[0];
  const latent: [number, number] = [z0.shape[2], z0.shape[3]];
  const m = modulationOf(p);
  const size = inputs.frames.json.size as [number, number];
  const budgeted: OptimizedOptions = {
    ...sdGroupOptions(backboneOf(p), latent, size, m.injection ? INJECT_POSITIONS : [], m.block, m.batch_bytes),
    reusePrefix: true,
    skipRepeats: true,
  };
  const variants: [string, OptimizedOptions | null][] = [
    ["reference schedule", null],
    ["skip absent labels (groups of 14)", {
      groupSamples: 14,
      microBatch: 28,
      reusePrefix: false,
      skipRepeats: false,
    }],
    ["+ run a repeated batch once", {
      groupSamples: 14,
      microBatch: 28,
      reusePrefix: false,
      skipRepeats: true,
    }],
    [`+ memory-budget groups (${budgeted.groupSamples} samples, ${budgeted.microBatch} rows/run)`, {
      ...budgeted,
      reusePrefix: false,
    }],
    ["+ prefix reuse (= optimized)", budgeted],
  ];
  // Warm-up: load every graph variant and session once, so no timed variant pays for model loading.
  await modulateClip(inputs, p, quiet, budgeted);
  await modulateClip(inputs, p, quiet, { ...budgeted, reusePrefix: false });
  const labelsOf = async (mod: Artifacts) =>
    (await labelsStage.run({ frames: inputs.frames, knn: inputs.knn, modulate: mod }, labelParams, quiet))
      .tensors
      .labels as Tensor<"U8">;
  const rows: BreakdownRow[] = [];
  let ref: { diff: Uint8Array; labels: Uint8Array } | null = null;
  for (const [name, opt] of variants) {
    evaluations.reset();
    const t0 = performance.now();
    const out = await modulateClip(inputs, p, quiet, opt);
    const wallMs = performance.now() - t0;
    const c = await counts(latent);
    const diff = out.tensors.diff.data as Uint8Array, labels = (await labelsOf(out)).data;
    ref ??= { diff, labels };
    rows.push({
      name,
      options: opt,
      wallMs,
      unetSamplesPerFrame: c.samples / N,
      unetFullEquivalentsPerFrame: c.full / N,
      vaeDecodesPerFrame: c.decodes / N,
      diffEqual: equalFraction(diff, ref.diff),
      labelsEqual: equalFraction(labels, ref.labels),
    });
    log(
      `bench: breakdown ${name}: ${(wallMs / 1000).toFixed(1)} s, ${
        (c.full / N).toFixed(2)
      } UNet-equivalents/frame`,
    );
  }
  return { row: o.row, clip: units[0], frames: N, labels: (inputs.knn.json.labels as number[]).length, rows };
}
