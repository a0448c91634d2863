/**
 * The per-video segmentation flow of docs/method.md §0/§5/§6 over precomputed features, without any model:
 * batch split (§6.4), K-Means on the first batch + frame-0 label assignment (§5), then per batch a KNN
 * prediction of every frame from the memory (§6.2), optional CBR (§7), and the memory replaced by this batch's
 * features and (refined) labels. Later batches overwrite the coarse maps of frames they share with earlier ones.
 *
 * Features enter per batch through a lookup, because a frame's features depend on its batch (its in-batch index
 * selects its noise); `aggFeatures` rows are the L∞-normalised aggregated features, `cbrFeatures` the raw CBR
 * block features.
 * @module
 */
import { assignClusters, type Assignment } from "./assign.ts";
import { type CbrOptions, computeTracks, type Tracks, voteAlongTrajectories } from "./cbr.ts";
import { kmeansFit, type KMeansOptions, kmeansPredict } from "./kmeans.ts";
import { type KnnMemory, knnPredict } from "./knn.ts";

/** Frames [start, end) of one diffusion batch. */
export interface BatchRange {
  start: number;
  end: number;
}

/**
 * The reference batch split (§6.4): F = min(batchSize, N) frames per batch, ⌊N/F⌋ + 1 batches, batch b covers
 * [F·b, min(F·b + F, N)), and a batch ending at N starts at N − F instead. So the last batch overlaps the one
 * before, and when F divides N the last batch is repeated (dropped with `dedupeLastBatch`). batchSize 1 is
 * frame by frame; N < batchSize gives one batch of N frames (the reference crashes there).
 */
export function planBatches(N: number, batchSize: number, dedupeLastBatch = false): BatchRange[] {
  if (!(N >= 1) || !(batchSize >= 1)) {
    throw new Error(`planBatches: need N ≥ 1 and batchSize ≥ 1, got ${N}, ${batchSize}`);
  }
  const F = Math.min(batchSize, N);
  const plan: BatchRange[] = [];
  for (let b = 0; b <= Math.floor(N / F); b++) {
    const end = Math.min(F * b + F, N);
    const start = end === N ? Math.max(N - F, 0) : F * b;
    const prev = plan[plan.length - 1];
    if (dedupeLastBatch && prev && prev.start === start && prev.end === end) continue;
    plan.push({ start, end });
  }
  return plan;
}

/** The distinct ranges of a plan, in first-use order. */
export function distinctBatches(plan: readonly BatchRange[]): BatchRange[] {
  const out: BatchRange[] = [];
  for (const r of plan) if (!out.some((o) => o.start === r.start && o.end === r.end)) out.push(r);
  return out;
}

/** Features of one batch of F frames on an h×w grid. */
export interface BatchFeatures {
  /** L∞-normalised aggregated features [F·h·w × C]. */
  agg: Float32Array;
  /** Raw CBR-block features [F·h·w × cbrC] (needed only with CBR). */
  cbr?: Float32Array;
}

/** Grid and channel sizes. */
export interface FeatureDims {
  h: number;
  w: number;
  C: number;
  /** Channels of the CBR features. */
  cbrC?: number;
}

/** How K-Means is fitted (config `kmeans.*`, `seed`). */
export interface FirstFrameOptions extends KMeansOptions {
  /** Fit on all frames of the first batch (code) or on frame 0 only (paper). */
  fit: "batch" | "first_frame";
}

/** K-Means on the first batch, prediction of frame 0, label assignment (§5). */
export interface FirstFrameResult extends Assignment {
  /** Frame-0 cluster ids [h·w]. */
  clusters: Int32Array;
  centers: Float32Array;
  inertia: number;
  nIter: number;
}

/** §5: fit on `batch0.agg` (all F frames or frame 0), predict frame 0, assign by GT majority (or keep ids). */
export function firstFrameLabels(
  batch0: Float32Array,
  F: number,
  dims: FeatureDims,
  gtGrid: ArrayLike<number> | null,
  opts: FirstFrameOptions,
): FirstFrameResult {
  const hw = dims.h * dims.w, C = dims.C;
  const nFit = opts.fit === "first_frame" ? hw : F * hw;
  const model = kmeansFit(batch0.subarray(0, nFit * C), nFit, C, opts);
  const clusters = kmeansPredict(model, batch0.subarray(0, hw * C), hw);
  return {
    ...assignClusters(clusters, gtGrid),
    clusters,
    centers: model.centers,
    inertia: model.inertia,
    nIter: model.nIter,
  };
}

/** Settings of the context loop. */
export interface ContextOptions {
  /** KNN neighbours (config `knn.k`). */
  k: number;
  /**
   * CBR per batch: off (null), precomputed trajectories per batch (`tracks`), or `options` to compute them here
   * from `BatchFeatures.cbr`.
   */
  cbr: null | { tracks: (r: BatchRange) => Tracks } | { options: CbrOptions };
}

/** Output of the context loop. */
export interface CoarseResult {
  /** Final coarse labels per frame [N·h·w] (later batches overwrite shared frames). */
  coarse: Int32Array;
  /** Per executed batch (plan order): KNN output and the refined maps [F·h·w] (refined = knn without CBR). */
  batches: { range: BatchRange; knn: Int32Array; refined: Int32Array }[];
}

/**
 * §6.2 + §7 over a batch plan: memory starts as (frame-0 features of the first batch, `refLabels`); every batch
 * is predicted with the KNN, refined by CBR, then becomes the memory.
 */
export function contextLoop(
  plan: readonly BatchRange[],
  N: number,
  dims: FeatureDims,
  featuresOf: (r: BatchRange) => BatchFeatures,
  refLabels: Int32Array,
  opts: ContextOptions,
  onBatch?: (done: number, total: number) => void,
): CoarseResult {
  const hw = dims.h * dims.w, C = dims.C;
  const first = featuresOf(plan[0]).agg;
  let memory: KnnMemory = { features: first.slice(0, hw * C), labels: refLabels, n: hw, d: C };
  const coarse = new Int32Array(N * hw);
  const batches: CoarseResult["batches"] = [];
  plan.forEach((range, b) => {
    const F = range.end - range.start;
    const feats = featuresOf(range);
    const knn = knnPredict(memory, feats.agg, F * hw, opts.k);
    let refined = knn;
    if (opts.cbr && F > 1) {
      let tracks: Tracks;
      if ("tracks" in opts.cbr) tracks = opts.cbr.tracks(range);
      else {
        if (!feats.cbr || !dims.cbrC) {
          throw new Error("contextLoop: CBR is on but the batch has no CBR features");
        }
        tracks = computeTracks(feats.cbr, F, dims.h, dims.w, dims.cbrC, opts.cbr.options);
      }
      refined = voteAlongTrajectories(knn, tracks.pos, tracks.keep, F, hw);
    }
    coarse.set(refined, range.start * hw);
    batches.push({ range, knn, refined });
    memory = { features: feats.agg, labels: refined, n: F * hw, d: C };
    onBatch?.(b + 1, plan.length);
  });
  return { coarse, batches };
}
