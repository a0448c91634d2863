/**
 * Expected cost of work units, for balancing shards (pipeline/dag/shard.ts): the frames of each clip as its row's
 * dataset config selects them, and a relative weight per stage and frame measured on a 2-core CPU run of
 * configs/small.yaml (README "Cluster"). Only the ratios matter.
 * @module
 */
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import type { RowSpec } from "../dag/plan.ts";

/**
 * Relative cost per frame of each stage (modulate = 1), from the `wallMs` of the cache manifests of a
 * configs/small.yaml run (14 frames, 256×192, embedded model, 2-core CPU, 2026-12-04): frames 0.72 s, invert 15.1 s,
 * features 35.5 s, kmeans 0.57 s, cbr 0.17 s, knn 0.60 s, modulate 249 s, labels 2.9 s per instance. Unlisted
 * stages weigh 1 (a conservative guess for new stages).
 */
export const STAGE_WEIGHTS: Readonly<Record<string, number>> = {
  frames: 0.003,
  invert: 0.061,
  features: 0.143,
  kmeans: 0.0023,
  cbr: 0.0007,
  knn: 0.0024,
  modulate: 1,
  labels: 0.011,
};

/**
 * Frames of each (row, clip): loads each distinct dataset config once. Datasets that cannot be listed (a test's
 * synthetic stages, a missing root that the run itself will report) count 1 frame per clip.
 */
export function framesCounter(rows: readonly RowSpec[]): (row: string, unit: string) => number {
  const byDataset = new Map<string, Map<string, number>>();
  const byRow = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const ds = r.config.dataset as Record<string, unknown> | undefined;
    const id = JSON.stringify(ds ?? null);
    let counts = byDataset.get(id);
    if (!counts) {
      counts = new Map();
      try {
        for (const c of loadDataset(datasetSpecFromConfig(ds ?? {}))) counts.set(c.name, c.frames.length);
      } catch { /* unknown layout: 1 frame per clip */ }
      byDataset.set(id, counts);
    }
    byRow.set(r.name, counts);
  }
  return (row, unit) => byRow.get(row)?.get(unit) ?? 1;
}
