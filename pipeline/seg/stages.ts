/**
 * The `kmeans`, `cbr` and `knn` stages (one instance per clip). The KNN memory of batch b holds batch b−1's
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
import { type Artifacts, type Json, shapeOf, type Stage } from "../dag/stage.ts";
import { normalizeLinf } from "../tensor/ops.ts";
import { f32, i32, type Tensor, u8 } from "../tensor/tensor.ts";
import { aggregatedFeatures, cbrFeatures, type RowRange } from "./aggregate.ts";
import { computeTracks, type Tracks } from "./cbr.ts";
import { type BatchRange, contextLoop, distinctBatches, firstFrameLabels, planBatches } from "./video.ts";

/** What the stages need from the "features" artifact. */
interface FeatureView {
  h: number;
  w: number;
  N: number;
  frames: string[];
  /** Row offset (in frames) of a batch's features. */
  offsetOf(r: BatchRange): number;
}

function featureView(a: Artifacts | undefined): FeatureView {
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

function checkFeature(t: Tensor<"F32">, name: string, hw: number): Tensor<"F32"> {
  if (t.shape.length !== 3 || t.shape[1] !== hw) {
    throw new Error(`seg stages: ${name} must be [T, ${hw}, C], got [${t.shape}]`);
  }
  return t;
}

/** Feature rows of one batch, read from the artifact only for that batch (long videos stream). */
function batchFeatures(
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
function aggSource(a: Artifacts, p: Record<string, unknown>): string {
  if (shapeOf(a, "features_agg")) return "features_agg";
  return `q${p["features.aggregate"] ? (p["features.blocks"] as number[])[0] : p["features.block"]}`;
}

/** The L∞-normalised clustering features of one batch (config `features.*`). */
function aggFeatures(a: Artifacts, view: FeatureView, r: BatchRange, p: Record<string, unknown>): Tensor<"F32"> {
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

function plan(view: FeatureView, p: Record<string, unknown>): BatchRange[] {
  return planBatches(
    view.N,
    p["batch_size"] as number,
    (p["dedupe_last_batch"] as boolean | undefined) ?? false,
  );
}

const rangesJson = (rs: BatchRange[]): Json => rs.map((r) => [r.start, r.end]);

/** K-Means on the first batch + frame-0 assignment (docs/method.md §5). */
export const kmeansStage: Stage = {
  name: "kmeans",
  version: 1,
  params: [
    "features.aggregate",
    "features.blocks",
    "features.block",
    "kmeans.k",
    "kmeans.n_init",
    "kmeans.max_iter",
    "kmeans.tol",
    "kmeans.fit",
    "seed",
    "batch_size",
  ],
  upstream: ["features", "frames"],
  run(inputs, p, ctx) {
    const view = featureView(inputs.features);
    const hw = view.h * view.w;
    const first = planBatches(view.N, p["batch_size"] as number)[0];
    const agg = aggFeatures(inputs.features, view, first, p); // only the first batch is clustered
    const C = agg.shape[2];
    const gt = inputs.frames?.tensors.gt_grid;
    if (gt && gt.data.length !== hw) {
      throw new Error(`kmeans stage: gt_grid [${gt.shape}] does not match the grid ${view.h}×${view.w}`);
    }
    ctx.log(
      `kmeans: K=${p["kmeans.k"]} on ${
        p["kmeans.fit"] === "first_frame" ? 1 : first.end - first.start
      } frame(s) of ${hw} cells`,
    );
    const res = firstFrameLabels(
      agg.data,
      first.end - first.start,
      { h: view.h, w: view.w, C },
      gt ? (gt.data as ArrayLike<number>) : null,
      {
        k: p["kmeans.k"] as number,
        nInit: p["kmeans.n_init"] as number,
        maxIter: p["kmeans.max_iter"] as number,
        tol: p["kmeans.tol"] as number,
        fit: p["kmeans.fit"] as "batch" | "first_frame",
        seed: p["seed"] as number,
      },
    );
    ctx.progress(1, 1, "kmeans");
    const clusterLabels: Record<string, Json> = {};
    for (const [c, l] of res.clusterLabel) clusterLabels[String(c)] = l;
    return Promise.resolve({
      tensors: {
        clusters: i32([view.h, view.w], res.clusters),
        ref_labels: i32([view.h, view.w], res.refLabels),
        centers: f32([res.centers.length / C, C], res.centers),
      },
      json: { labels: res.labels, cluster_labels: clusterLabels, inertia: res.inertia, n_iter: res.nIter },
    });
  },
};

/** CBR trajectories + spatial test per distinct batch (docs/method.md §7 steps 1–2; label-free). */
export const cbrStage: Stage = {
  name: "cbr",
  version: 1,
  params: [
    "cbr.block",
    "cbr.enabled",
    "cbr.spatial_threshold",
    "cbr.abs_threshold",
    "batch_size",
    "dedupe_last_batch",
  ],
  upstream: ["features"],
  run(inputs, p, ctx) {
    const view = featureView(inputs.features);
    const hw = view.h * view.w;
    const batches = distinctBatches(plan(view, p));
    const F = batches[0].end - batches[0].start;
    const enabled = p["cbr.enabled"] as boolean;
    if (!enabled) {
      return Promise.resolve({
        tensors: { tracks: i32([0, F, hw]), track_keep: u8([0, hw]) },
        json: { enabled: false, batches: rangesJson(batches) },
      });
    }
    const block = p["cbr.block"] as number;
    const name = shapeOf(inputs.features, "features_cbr") ? "features_cbr" : `q${block}`;
    const tracks = new Int32Array(batches.length * F * hw), keep = new Uint8Array(batches.length * hw);
    const opts = {
      spatialThreshold: p["cbr.spatial_threshold"] as number,
      absThreshold: p["cbr.abs_threshold"] as boolean,
    };
    batches.forEach((r, b) => {
      const raw = batchFeatures(inputs.features, view, r, (rows) => cbrFeatures(inputs.features, block, rows), name);
      const t = computeTracks(raw.data, F, view.h, view.w, raw.shape[2], opts);
      tracks.set(t.pos, b * F * hw);
      keep.set(t.keep, b * hw);
      ctx.progress(b + 1, batches.length, "cbr trajectories");
    });
    return Promise.resolve({
      tensors: { tracks: i32([batches.length, F, hw], tracks), track_keep: u8([batches.length, hw], keep) },
      json: { enabled: true, batches: rangesJson(batches) },
    });
  },
};

/** KNN context loop with CBR votes and memory replacement (docs/method.md §6, §7 step 3). */
export const knnStage: Stage = {
  name: "knn",
  version: 1,
  params: [
    "features.aggregate",
    "features.blocks",
    "features.block",
    "knn.k",
    "batch_size",
    "dedupe_last_batch",
  ],
  upstream: ["features", "kmeans", "cbr"],
  run(inputs, p, ctx) {
    const view = featureView(inputs.features);
    const hw = view.h * view.w;
    const C = shapeOf(inputs.features, aggSource(inputs.features, p))?.shape[2] ?? 0;
    const batchPlan = plan(view, p);
    const distinct = distinctBatches(batchPlan);
    const F = distinct[0].end - distinct[0].start;
    const km = inputs.kmeans, cb = inputs.cbr;
    if (!km) throw new Error(`knn stage: missing upstream "kmeans"`);
    const cbrOn = cb?.json.enabled === true;
    const slot = (r: BatchRange) => distinct.findIndex((d) => d.start === r.start && d.end === r.end);
    const tracksOf = (r: BatchRange): Tracks => {
      const s = slot(r),
        tr = cb!.tensors.tracks.data as Int32Array,
        kp = cb!.tensors.track_keep.data as Uint8Array;
      if (s >= cb!.tensors.tracks.shape[0]) {
        throw new Error(`knn stage: cbr artifact has no tracks for batch [${r.start}, ${r.end})`);
      }
      return { pos: tr.subarray(s * F * hw, (s + 1) * F * hw), keep: kp.subarray(s * hw, (s + 1) * hw) };
    };
    const res = contextLoop(
      batchPlan,
      view.N,
      { h: view.h, w: view.w, C },
      (r) => ({ agg: aggFeatures(inputs.features, view, r, p).data }), // one batch in memory at a time
      km.tensors.ref_labels.data as Int32Array,
      { k: p["knn.k"] as number, cbr: cbrOn ? { tracks: tracksOf } : null },
      (done, total) => ctx.progress(done, total, "knn batches"),
    );
    const refined = new Int32Array(distinct.length * F * hw), knn = new Int32Array(distinct.length * F * hw);
    for (const b of res.batches) {
      refined.set(b.refined, slot(b.range) * F * hw);
      knn.set(b.knn, slot(b.range) * F * hw);
    }
    return Promise.resolve({
      tensors: {
        coarse: i32([view.N, view.h, view.w], res.coarse),
        coarse_batches: i32([distinct.length, F, view.h, view.w], refined),
        coarse_knn: i32([distinct.length, F, view.h, view.w], knn),
      },
      json: {
        labels: km.json.labels,
        batches: rangesJson(distinct),
        frames: view.frames,
        grid: [view.h, view.w],
      },
    });
  },
};

/** The three stages, for registration. */
export const segStages: Stage[] = [kmeansStage, cbrStage, knnStage];
