/**
 * Feature-quality probe: how well could *any* label assignment do with these features? It ranks backbones,
 * checkpoints and feature settings without running modulation.
 *
 * Per clip, the (L∞-normalised, as the method clusters them) features of every frame are clustered together with
 * K-Means (K and settings from the config); each cluster is mapped to the GT class most of its cells carry, and
 * the resulting grid labels are scored against the grid GT with the project's mIoU (one confusion matrix over all
 * clips). That mIoU is an upper bound of what assigning labels to these clusters can reach.
 *
 * Temporal stability: for each pair of neighbouring frames, every cell of frame f finds its most similar cell
 * (cosine) in frame f+1; the score is the share of cells whose match carries the same GT class (cells with an
 * evaluated class on both sides). Features that follow scene content across frames score high; features that
 * encode image position or flicker score low. The mean cosine similarity of the same cell in neighbouring frames
 * is reported beside it.
 *
 * No I/O: the CLI (pipeline/cli/probe.ts) loads features and GT.
 * @module
 */
import { normalizeLinf } from "../tensor/ops.ts";
import { f32, type Tensor } from "../tensor/tensor.ts";
import { ConfusionMatrix } from "../metrics/miou.ts";
import { kmeansFit, type KMeansOptions } from "./kmeans.ts";

/** One clip's per-frame features and grid GT. */
export interface ProbeClip {
  name: string;
  /** F32 [N, h·w, C]: frame f's features in row f. */
  features: Tensor<"F32">;
  /** U8 [N, h·w]: GT class of every grid cell (nearest-resized label map). */
  gt: Tensor<"U8">;
}

/** Scores of a set of clips (percentages; null when undefined). */
export interface ProbeResult {
  /** mIoU of the majority-mapped clusters, in %. */
  mIoU: number | null;
  /** Per class (evaluated ids), IoU in % or null without GT cells. */
  classIoU: { id: number; iou: number | null }[];
  /** Share of cells whose nearest cell in the next frame has the same GT class, in %. */
  stability: number | null;
  /** Mean cosine similarity of a cell's features in neighbouring frames, in %. */
  sameCellCosine: number | null;
  perClip: { name: string; mIoU: number | null; stability: number | null; sameCellCosine: number | null }[];
}

/** Each cluster's majority GT class among `classIds` (cells of other classes do not vote); -1 for none. */
export function majorityMapping(
  clusters: Int32Array,
  gt: ArrayLike<number>,
  k: number,
  classIds: readonly number[],
): Int32Array {
  const index = new Map(classIds.map((id, i) => [id, i]));
  const votes = new Float64Array(k * classIds.length);
  for (let i = 0; i < clusters.length; i++) {
    const c = index.get(gt[i]);
    if (c !== undefined) votes[clusters[i] * classIds.length + c]++;
  }
  const map = new Int32Array(k).fill(-1);
  for (let j = 0; j < k; j++) {
    let best = 0;
    for (let c = 0; c < classIds.length; c++) {
      const v = votes[j * classIds.length + c];
      if (v > best) (best = v), (map[j] = classIds[c]); // ties → the lower class index
    }
  }
  return map;
}

/** Unit-length rows of X [n × d] (zero rows stay zero). */
function unitRows(X: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += X[i * d + c] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let c = 0; c < d; c++) out[i * d + c] = X[i * d + c] * inv;
  }
  return out;
}

/** Stability and same-cell cosine of one clip (sums and counts, to pool over clips). */
function temporal(
  feats: Float32Array,
  gt: Uint8Array,
  N: number,
  n: number,
  d: number,
  evaluated: Set<number>,
): { agree: number; pairs: number; cos: number; cells: number } {
  const unit = unitRows(feats, N * n, d);
  let agree = 0, pairs = 0, cos = 0, cells = 0;
  for (let f = 0; f + 1 < N; f++) {
    const a = f * n, b = (f + 1) * n;
    for (let i = 0; i < n; i++) {
      let best = -Infinity, arg = 0, same = 0;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += unit[(a + i) * d + c] * unit[(b + j) * d + c];
        if (s > best) (best = s), (arg = j);
        if (j === i) same = s;
      }
      cos += same;
      cells++;
      const g = gt[a + i], h = gt[b + arg];
      if (evaluated.has(g) && evaluated.has(h)) {
        pairs++;
        if (g === h) agree++;
      }
    }
  }
  return { agree, pairs, cos, cells };
}

/** Run the probe over clips; `classIds` are the evaluated classes (other GT values are ignored). */
export function probeFeatures(
  clips: readonly ProbeClip[],
  classIds: readonly number[],
  km: KMeansOptions,
): ProbeResult {
  const cm = new ConfusionMatrix(classIds);
  const evaluated = new Set(classIds);
  let agree = 0, pairs = 0, cos = 0, cells = 0;
  const perClip: ProbeResult["perClip"] = [];
  const pct = (num: number, den: number) => (den > 0 ? (100 * num) / den : null);
  for (const clip of clips) {
    const [N, n, d] = clip.features.shape;
    if (clip.gt.shape[0] !== N || clip.gt.shape[1] !== n) {
      throw new Error(
        `probe: clip ${clip.name} has features [${clip.features.shape}] but GT [${clip.gt.shape}]`,
      );
    }
    const X = normalizeLinf(clip.features).data;
    const model = kmeansFit(X, N * n, d, { ...km, k: Math.min(km.k, N * n) });
    const map = majorityMapping(model.labels, clip.gt.data, model.k, classIds);
    const pred = new Int32Array(N * n);
    for (let i = 0; i < pred.length; i++) pred[i] = map[model.labels[i]];
    cm.add(clip.gt.data, pred);
    const own = new ConfusionMatrix(classIds);
    own.add(clip.gt.data, pred);
    const t = temporal(X, clip.gt.data, N, n, d, evaluated);
    agree += t.agree, pairs += t.pairs, cos += t.cos, cells += t.cells;
    const m = own.result().mIoU;
    perClip.push({
      name: clip.name,
      mIoU: m === null ? null : 100 * m,
      stability: pct(t.agree, t.pairs),
      sameCellCosine: pct(t.cos, t.cells),
    });
  }
  const r = cm.result();
  return {
    mIoU: r.mIoU === null ? null : 100 * r.mIoU,
    classIoU: classIds.map((id, i) => ({ id, iou: r.perClass[i] === null ? null : 100 * r.perClass[i]! })),
    stability: pct(agree, pairs),
    sameCellCosine: pct(cos, cells),
    perClip,
  };
}

/** Frame f's feature rows out of a batch-stacked features tensor [T, h·w, C] (first batch holding f wins). */
export function framesFromBatches(
  q: Tensor<"F32">,
  batches: readonly [number, number][],
  N: number,
): Tensor<"F32"> {
  const [, n, d] = q.shape, per = n * d;
  const out = new Float32Array(N * per), seen = new Uint8Array(N);
  let off = 0;
  for (const [start, end] of batches) {
    for (let f = start; f < end; f++) {
      if (!seen[f]) {
        out.set(q.data.subarray((off + f - start) * per, (off + f - start + 1) * per), f * per),
          (seen[f] = 1);
      }
    }
    off += end - start;
  }
  if (seen.some((s) => !s)) throw new Error(`probe: the feature batches do not cover all ${N} frames`);
  return f32([N, n, d], out);
}
