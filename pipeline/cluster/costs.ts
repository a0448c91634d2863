/**
 * Expected cost of work units, for balancing shards (pipeline/dag/shard.ts): the frames of each clip as its row's
 * dataset config selects them, and a relative weight per stage and frame measured on the reference 2-core CPU run
 * of configs/small.yaml (256×192, embedded model; README "Cluster"). Only the ratios matter.
 * @module
 */
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import type { RowSpec } from "../dag/plan.ts";

/** Seconds per frame of each stage instance (README "Cluster": configs/small.yaml, 2-core CPU). */
export const STAGE_SECONDS_PER_FRAME: Readonly<Record<string, number>> = {
  frames: 0.01,
  invert: 0.3,
  features: 0.3,
  kmeans: 0.05,
  cbr: 0.05,
  knn: 0.02,
  modulate: 2.0,
  labels: 0.02,
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
