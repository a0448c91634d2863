/**
 * Stage `cbr` (docs/method.md §7 steps 1–2): the label-free part of correspondence-based refinement,
 * trajectories and the spatial test per distinct batch (artifacts: see `seg_features.ts`).
 * @module
 */
import { shapeOf, type Stage } from "../dag/stage.ts";
import { i32, u8 } from "../tensor/tensor.ts";
import { cbrFeatures } from "../seg/aggregate.ts";
import { computeTracks } from "../seg/cbr.ts";
import { distinctBatches } from "../seg/video.ts";
import { batchFeatures, featureView, planOf, rangesJson } from "./seg_features.ts";

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
    const batches = distinctBatches(planOf(view, p));
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
      const raw = batchFeatures(
        inputs.features,
        view,
        r,
        (rows) => cbrFeatures(inputs.features, block, rows),
        name,
      );
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
