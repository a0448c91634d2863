/**
 * Entry point of the data layer: `loadDataset` picks the layout loader for `dataset.kind`; `readFrame` /
 * `readGt` read one frame's pixels; `gtAtGrid` is the frame-0 GT at the feature grid (PIL NEAREST, §5.3).
 * @module
 */
import { fail } from "../errors.ts";
import { readImage, readLabelImage } from "../tensor/image.ts";
import { resizeNearest } from "../tensor/ops.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { loadCamvid } from "./camvid.ts";
import { loadCityscapes } from "./cityscapes.ts";
import type { ClipSelection, VideoClip } from "./clip.ts";
import { loadFrames } from "./frames.ts";
import { loadVspw } from "./vspw.ts";

/** Dataset layouts (config `dataset.kind`). */
export type DatasetKind = "camvid" | "vspw" | "cityscapes" | "frames";

/** Config `dataset.*`. */
export interface DatasetSpec extends ClipSelection {
  /** Layout of the folder. */
  kind: DatasetKind;
  /** Dataset folder. */
  root: string;
}

/** The selected clips of a dataset. */
export function loadDataset(spec: DatasetSpec): VideoClip[] {
  switch (spec.kind) {
    case "camvid":
      return loadCamvid(spec.root, spec);
    case "vspw":
      return loadVspw(spec.root, spec);
    case "cityscapes":
      return loadCityscapes(spec.root, spec);
    case "frames":
      return loadFrames(spec.root, spec);
    default:
      fail(
        "dataset.kind",
        `unknown dataset kind "${spec.kind}" (expected camvid, vspw, cityscapes or frames)`,
      );
  }
}

/** The spec from a config's `dataset` group (snake_case keys as in the YAML). */
export function datasetSpecFromConfig(d: Record<string, unknown>): DatasetSpec {
  return {
    kind: d.kind as DatasetKind,
    root: String(d.root),
    split: (d.split as string | null | undefined) ?? null,
    clips: (d.clips as "all" | string[] | undefined) ?? "all",
    maxFrames: (d.max_frames as number | null | undefined) ?? null,
  };
}

/** Frame `i` of a clip as U8 [H, W, 3]. */
export function readFrame(clip: VideoClip, i: number): Promise<Tensor<"U8">> {
  return readImage(clip.frames[i].image);
}

/** GT of frame `i` as U8 [H, W] class ids, or null when the frame is not annotated. */
export function readGt(clip: VideoClip, i: number): Tensor<"U8"> | null {
  const gt = clip.frames[i].gt;
  return gt === null ? null : readLabelImage(gt);
}

/** A GT label map nearest-resized (PIL convention) to the h×w feature grid. */
export function gtAtGrid(gt: Tensor<"U8">, h: number, w: number): Tensor<"U8"> {
  return resizeNearest(gt, h, w);
}
