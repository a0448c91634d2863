/**
 * What the segmentation stages (`kmeans`, `cbr`, `knn`, one instance per clip) share: their view of the
 * "features" artifact, batch by batch. The KNN memory of batch b holds batch b−1's
 * CBR-refined labels, so KNN and CBR cannot be separate stages in sequence; what *can* be split off is the costly,
 * label-free part of CBR (trajectories + spatial test). Hence the DAG
 *
 *     features ─┬─ kmeans ─┐
 *     frames ───┘          ├─ knn  (per batch: KNN → vote along the trajectories → memory)
 *     features ─── cbr ────┘
 *
 * and the coarse maps come out of `knn`.
 *
 * Inputs (artifacts of upstream stages):
 * - "features": either per-block raw self-attention queries `q<i>` F32|F16 [T, h·w, C] (aggregated here by
 *   `aggregate.ts` from config `features.*`; CBR reads `q<cbr.block>`), or ready-made `features_agg` [T, h·w, C]
 *   (aggregated; raw or already L∞-normalised — normalised here, the normalisation is idempotent) and
 *   `features_cbr` [T, h·w, C'] (raw CBR-block q, needed only when cbr.enabled), which take precedence.
 *   json `grid` [h, w], `frames` (the clip's N frame names), optional `batches` [[start, end), …]: the frame
 *   ranges whose features are stacked in the rows, in order (T = Σ lengths; a frame's features depend on its
 *   batch). Without `batches`, T = N and row f = frame f.
 * - "frames": tensor `gt_grid` U8|I32 [h, w] — frame-0 GT nearest-resized to the grid; absent = single-video mode
 *   (labels are cluster ids).
 *
 * Outputs:
 * - kmeans: tensors `clusters` I32 [h, w] (frame-0 cluster ids), `ref_labels` I32 [h, w] (assigned frame-0
 *   labels), `centers` F32 [K, C]; json `labels` (the label set, ascending), `cluster_labels` {cluster: label},
 *   `inertia`, `n_iter`.
 * - cbr: tensors `tracks` I32 [B, F, h·w] (trajectory positions per distinct batch), `track_keep` U8 [B, h·w];
 *   json `enabled`, `batches` [[start, end), …] (distinct batches of the plan, B of them, F frames each).
 * - knn: tensors `coarse` I32 [N, h, w] (final coarse labels per frame; later batches overwrite),
 *   `coarse_batches` I32 [B, F, h, w] (per distinct batch, CBR-refined when on: the masks for modulation and
 *   filtering), `coarse_knn` I32 [B, F, h, w] (the same before CBR); json `labels`, `batches`, `frames`, `grid`.
 * @module
 */
import { type Artifacts, type Json, shapeOf } from "../dag/stage.ts";
import { normalizeLinf } from "../tensor/ops.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { aggregatedFeatures, type RowRange } from "../seg/aggregate.ts";
import { type BatchRange, planBatches } from "../seg/video.ts";

/** What the stages need from the "features" artifact. */
export interface FeatureView {
  h: number;
  w: number;
  N: number;
  frames: string[];
  /** Row offset (in frames) of a batch's features. */
  offsetOf(r: BatchRange): number;
}

export function featureView(a: Artifacts | undefined): FeatureView {
  if (!a) throw new Error(`seg stages: missing upstream "features"`);
  const grid = a.json.grid as number[] | undefined, frames = a.json.frames as string[] | undefined;
  if (!Array.isArray(grid) || grid.length !== 2) {
    throw new Error(`seg stages: features json.grid must be [h, w]`);
  }
  if (!Array.isArray(frames) || frames.length === 0) {
    throw new Error(`seg stages: features json.frames must list the frames`);
  }
  const [h, w] = grid, N = frames.length;
  const stored = (a.json.batches as [number, number][] | undefined)?.map(([start, end]) => ({ start, end }));
  const offsetOf = (r: BatchRange): number => {
    if (!stored) return r.start;
    let off = 0;
    for (const s of stored) {
      if (s.start === r.start && s.end === r.end) return off;
      off += s.end - s.start;
    }
    throw new Error(`seg stages: features have no rows for batch [${r.start}, ${r.end})`);
  };
  return { h, w, N, frames, offsetOf };
}

export function checkFeature(t: Tensor<"F32">, name: string, hw: number): Tensor<"F32"> {
  if (t.shape.length !== 3 || t.shape[1] !== hw) {
    throw new Error(`seg stages: ${name} must be [T, ${hw}, C], got [${t.shape}]`);
  }
  return t;
}

/** Feature rows of one batch, read from the artifact only for that batch (long videos stream). */
export function batchFeatures(
  a: Artifacts,
  view: FeatureView,
  r: BatchRange,
  read: (rows: RowRange) => Tensor<"F32">,
  name: string,
): Tensor<"F32"> {
  const off = view.offsetOf(r);
  const stored = shapeOf(a, name);
  const hw = view.h * view.w;
  if (stored && (stored.shape.length !== 3 || stored.shape[1] !== hw)) {
    throw new Error(`seg stages: ${name} must be [T, ${hw}, C], got [${stored.shape}]`);
  }
  if (off + r.end - r.start > (stored?.shape[0] ?? Infinity)) {
    throw new Error(`seg stages: features too short for batch [${r.start}, ${r.end})`);
  }
  return checkFeature(read({ start: off, end: off + r.end - r.start }), name, hw);
}

/** The stored tensor whose rows the clustering features come from (its shape is theirs). */
export function aggSource(a: Artifacts, p: Record<string, unknown>): string {
  if (shapeOf(a, "features_agg")) return "features_agg";
  return `q${p["features.aggregate"] ? (p["features.blocks"] as number[])[0] : p["features.block"]}`;
}

/** The L∞-normalised clustering features of one batch (config `features.*`). */
export function aggFeatures(
  a: Artifacts,
  view: FeatureView,
  r: BatchRange,
  p: Record<string, unknown>,
): Tensor<"F32"> {
  const name = aggSource(a, p);
  return normalizeLinf(batchFeatures(a, view, r, (rows) =>
    aggregatedFeatures(
      a,
      p["features.aggregate"] as boolean,
      p["features.blocks"] as number[],
      p["features.block"] as number,
      rows,
    ), name));
}

export function planOf(view: FeatureView, p: Record<string, unknown>): BatchRange[] {
  return planBatches(
    view.N,
    p["batch_size"] as number,
    (p["dedupe_last_batch"] as boolean | undefined) ?? false,
  );
}

export const rangesJson = (rs: BatchRange[]): Json => rs.map((r) => [r.start, r.end]);
