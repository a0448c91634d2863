/**
 * Stage `knn` (docs/method.md §6, §7 step 3): the scene-context KNN loop with CBR votes and memory replacement;
 * the coarse maps of every batch come out here (artifacts: see `seg_features.ts`).
 * @module
 */
import { shapeOf, type Stage } from "../dag/stage.ts";
import { i32 } from "../tensor/tensor.ts";
import type { Tracks } from "../seg/cbr.ts";
import { type BatchRange, contextLoop, distinctBatches } from "../seg/video.ts";
import { aggFeatures, aggSource, featureView, planOf, rangesJson } from "./seg_features.ts";

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
    const batchPlan = planOf(view, p);
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
