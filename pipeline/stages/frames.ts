/**
 * Stage `frames`: one clip of the configured dataset, read, checked and resized to the processing size
 * (docs/method.md §1.1: (W − W mod 64, H − H mod 64) with PIL bicubic, or the configured `resolution`), plus the
 * first frame's GT nearest-resized to the feature grid (§5.3) when the clip is annotated.
 *
 * Frames are read, resized and streamed out one at a time (a long video never sits in memory).
 *
 * Artifacts: tensors `frames` U8 [N, H, W, 3], `gt_grid` U8 [H/16, W/16] (absent without GT); json `frames`
 * (frame names), `size0` [H0, W0] (original size), `size` [H, W], `palette`, `classes`.
 * @module
 */
import { type Json, type Stage, tensorOutput, type TensorOutput } from "../dag/stage.ts";
import { fail } from "../errors.ts";
import { datasetSpecFromConfig, gtAtGrid, loadDataset, readFrame, readGt } from "../data/dataset.ts";
import type { VideoClip } from "../data/clip.ts";
import { resizeBicubicPil } from "../tensor/ops.ts";
import type { Tensor } from "../tensor/tensor.ts";

type P = Record<string, unknown>;

/** The clip named `unit` of the configured dataset. */
export function clipOf(p: P): VideoClip {
  const spec = { ...datasetSpecFromConfig(p.dataset as Record<string, unknown>), clips: [p.unit as string] };
  const clips = loadDataset(spec);
  if (clips.length !== 1) fail(`dataset.clips`, `clip "${p.unit}" not found in ${spec.root}`);
  if (clips[0].frames.length === 0) fail(spec.root, `clip "${p.unit}" has no frames`);
  return clips[0];
}

/** Processing size [H, W] for frames of size [H0, W0]. */
export function processingSize(size0: [number, number], resolution: unknown): [number, number] {
  if (Array.isArray(resolution)) return [resolution[1] as number, resolution[0] as number];
  const [H0, W0] = size0;
  if (H0 < 64 || W0 < 64) fail("resolution", `frames of ${W0}×${H0} are smaller than 64 px; set resolution: [W, H]`);
  return [H0 - (H0 % 64), W0 - (W0 % 64)];
}

export const framesStage: Stage<P> = {
  name: "frames",
  version: 1,
  params: ["dataset", "resolution"],
  upstream: [],
  inputFiles: (p) => clipOf(p).frames.flatMap((f) => (f.gt ? [f.image, f.gt] : [f.image])),
  async run(_inputs, p, ctx) {
    const clip = clipOf(p);
    const N = clip.frames.length;
    let size0: [number, number] | null = null;
    let H = 0, W = 0;
    let out: TensorOutput<"U8"> | null = null;
    for (let i = 0; i < N; i++) {
      const img = await readFrame(clip, i);
      const [h0, w0] = img.shape;
      if (!size0) {
        size0 = [h0, w0];
        [H, W] = processingSize(size0, p.resolution);
        out = tensorOutput(ctx, "frames", "U8", [N, H, W, 3]);
      } else if (h0 !== size0[0] || w0 !== size0[1]) {
        fail(clip.frames[i].image, `frame is ${w0}×${h0} but the clip's first frame is ${size0[1]}×${size0[0]} (all frames of a clip must have one size)`);
      }
      const r = h0 === H && w0 === W ? img : resizeBicubicPil(img, H, W);
      out!.append({ dtype: "U8", shape: [1, H, W, 3], data: r.data as Uint8Array });
      ctx.progress(i + 1, N, "frames read");
    }
    const tensors: Record<string, Tensor> = out!.result();
    const gt0 = readGt(clip, 0);
    if (gt0) {
      if (gt0.shape[0] !== size0![0] || gt0.shape[1] !== size0![1]) {
        const [h, w] = size0!;
        const what = `GT is ${gt0.shape[1]}×${gt0.shape[0]} but its frame is ${w}×${h}`;
        fail(clip.frames[0].gt!, `${what} (expected a label PNG of its frame's size)`);
      }
      tensors.gt_grid = gtAtGrid(gt0, H / 16, W / 16);
    }
    const json: Record<string, Json> = {
      frames: clip.frames.map((f) => f.name),
      size0: size0!,
      size: [H, W],
      palette: clip.palette.map((c) => [...c]),
      classes: clip.classes.map((c) => ({ id: c.id, name: c.name })),
    };
    return { tensors, json };
  },
};
