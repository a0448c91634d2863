/**
 * Stage `kmeans` (docs/method.md §5): K-Means on the features of the first batch and the frame-0 label assignment
 * (artifacts: see `seg_features.ts`).
 * @module
 */
import type { Json, Stage } from "../dag/stage.ts";
import { f32, i32 } from "../tensor/tensor.ts";
import { firstFrameLabels, planBatches } from "../seg/video.ts";
import { aggFeatures, featureView } from "./seg_features.ts";

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
