/**
 * Stage `labels` (docs/method.md §8.6): per frame, normalise each label's difference map, optionally filter it
 * with the Lanczos-upsampled coarse mask (strength s; 1.0 = off) and take the argmax over labels. Cheap, and
 * separate from `modulate` so the filtering strength can change without re-running any diffusion pass.
 *
 * Artifacts: tensors `labels` U8 [N, H0, W0] (dataset class ids, or cluster ids without GT); json `frames`,
 * `palette`, `labels` (the label set).
 * @module
 */
import { rowsOf, shapeOf, type Stage, tensorOutput } from "../dag/stage.ts";
import { labelsFromDifferences } from "../seg/labels.ts";
import type { Tensor } from "../tensor/tensor.ts";

type P = Record<string, unknown>;

export const labelsStage: Stage<P> = {
  name: "labels",
  version: 1,
  params: ["modulation.filter_strength"],
  upstream: ["frames", "knn", "modulate"],
  role: "labels",
  run(inputs, p, ctx) {
    const [N, L, H0, W0] = shapeOf(inputs.modulate, "diff")!.shape; // U8, read one frame at a time
    const labelSet = inputs.modulate.json.labels as number[];
    const coarse = inputs.knn.tensors.coarse as Tensor<"I32">; // [N, h, w]: the maps of each frame's last batch
    const [, h, w] = coarse.shape;
    const plane = H0 * W0;
    const out = tensorOutput(ctx, "labels", "U8", [N, H0, W0]);
    for (let f = 0; f < N; f++) {
      const diff = rowsOf(inputs.modulate, "diff", f, f + 1) as Tensor<"U8">;
      const maps = Array.from({ length: L }, (_, l) => ({
        dtype: "U8" as const,
        shape: [H0, W0],
        data: diff.data.subarray(l * plane, (l + 1) * plane),
      }));
      const lab = labelsFromDifferences(maps, labelSet, {
        filterStrength: p["modulation.filter_strength"] as number,
        coarse: { labels: coarse.data.subarray(f * h * w, (f + 1) * h * w), h, w },
      });
      out.append({ dtype: "U8", shape: [1, H0, W0], data: Uint8Array.from(lab.data as ArrayLike<number>) });
      ctx.progress(f + 1, N, "frames labelled");
    }
    return Promise.resolve({
      tensors: out.result(),
      json: { frames: inputs.frames.json.frames, palette: inputs.frames.json.palette, labels: labelSet },
    });
  },
};
