/**
 * What figures and notebooks show, extracted from cached artifacts (through `RunView`): a clip's frames,
 * palette and classes, GT, predicted labels, the per-label difference maps of one frame with the label
 * decision with and without filtering, K-Means assignments for another K, and per-frame IoU. Only
 * functions of the pipeline itself are used to recompute anything (seg/labels.ts, metrics/miou.ts).
 * @module
 */
import { datasetSpecFromConfig, loadDataset, readGt } from "../data/dataset.ts";
import type { VideoClip } from "../data/clip.ts";
import { labelsFromDifferences, softMask } from "../seg/labels.ts";
import { ConfusionMatrix } from "../metrics/miou.ts";
import { resizeNearest } from "../tensor/ops.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";
import { UserError } from "../errors.ts";
import type { Rgb } from "./labels_png.ts";
import type { RunView } from "./artifacts.ts";
import { frameOf, planeOf } from "./images.ts";

/** What the `frames` artifact says about a clip. */
export interface ClipInfo {
  clip: string;
  /** Frame names, in order. */
  frames: string[];
  /** Original [H0, W0] and processing [H, W] sizes. */
  size0: [number, number];
  size: [number, number];
  palette: Rgb[];
  classes: { id: number; name: string }[];
}

/** Frame names, sizes, palette and classes of a clip (from its cached `frames` artifact). */
export async function clipInfo(run: RunView, row: string, clip: string): Promise<ClipInfo> {
  const j = (await run.load("frames", row, clip)).json;
  return {
    clip,
    frames: j.frames as string[],
    size0: j.size0 as [number, number],
    size: j.size as [number, number],
    palette: (j.palette ?? []) as unknown as Rgb[],
    classes: (j.classes ?? []) as { id: number; name: string }[],
  };
}

/** Frame i at the processing size, U8 [H, W, 3] (from the cached `frames` artifact). */
export async function frameImage(run: RunView, row: string, clip: string, i: number): Promise<Tensor<"U8">> {
  return frameOf((await run.load("frames", row, clip)).tensors.frames, i);
}

const clipMemo = new WeakMap<RunView, Map<string, VideoClip>>();

/** The dataset clip a row reads (frame files, GT files, classes); listed once per run view. */
export function datasetClip(run: RunView, row: string, clip: string): VideoClip {
  const ds = run.row(row).config.dataset as unknown as Record<string, unknown>;
  const key = `${JSON.stringify(ds)}|${clip}`;
  let memo = clipMemo.get(run);
  if (!memo) clipMemo.set(run, memo = new Map());
  const hit = memo.get(key);
  if (hit) return hit;
  const clips = loadDataset({ ...datasetSpecFromConfig(ds), clips: [clip] });
  if (clips.length !== 1) {
    throw new UserError(`dataset.clips: clip "${clip}" not found in ${String(ds.root)}`);
  }
  memo.set(key, clips[0]);
  return clips[0];
}

/** GT of frame i (U8 [H0, W0]) or null when it is not annotated. */
export function gtImage(run: RunView, row: string, clip: string, i: number): Tensor<"U8"> | null {
  return readGt(datasetClip(run, row, clip), i);
}

/** The predicted labels of a row and clip, U8 [N, H0, W0] (cached `labels` artifact). */
export async function predictedLabels(run: RunView, row: string, clip: string): Promise<Tensor<"U8">> {
  return (await run.load("labels", row, clip)).tensors.labels as Tensor<"U8">;
}

/** `count` frame indices spread evenly over 0..N−1 (all of them when N ≤ count). */
export function evenFrames(N: number, count: number): number[] {
  if (N <= count) return Array.from({ length: N }, (_, i) => i);
  if (count <= 1) return [0];
  return Array.from({ length: count }, (_, j) => Math.round((j * (N - 1)) / (count - 1)));
}

/** Check user-given frame indices against a clip of N frames. */
export function checkFrames(frames: readonly number[], N: number, clip: string): number[] {
  for (const f of frames) {
    if (!Number.isInteger(f) || f < 0 || f >= N) {
      throw new UserError(`--frames: frame ${f} is outside 0..${N - 1} (clip ${clip} has ${N} frames)`);
    }
  }
  return [...frames];
}

/** One frame's difference maps and the label decisions built on them. */
export interface DifferenceView {
  frame: number;
  /** The label set (modulate json.labels) and, per label, the stored 8-bit difference map [H0, W0]. */
  labels: number[];
  diffs: Tensor<"U8">[];
  /** Labels with a non-empty coarse mask in this frame, largest area first. */
  present: number[];
  /** Coarse (CBR-refined) labels of this frame on the feature grid [h·w]. */
  coarse: Int32Array;
  grid: [number, number];
  size0: [number, number];
  /** argmax without filtering (s = 1) and with filtering at `filterStrength`. */
  unfiltered: Tensor<"I32">;
  filtered: Tensor<"I32">;
  filterStrength: number;
  /** The `labels` stage's output for this frame [H0·W0]. */
  final: Uint8Array;
}

/**
 * The difference maps of `frame` (modulate), its coarse map (knn `coarse`, as the labels stage uses it) and
 * the label decision recomputed with seg/labels.ts without and with filtering. `filterStrength` defaults to
 * the row's `modulation.filter_strength`, or the paper's 0.7 when the row does not filter.
 */
export async function differenceView(
  run: RunView,
  row: string,
  clip: string,
  frame: number,
  filterStrength?: number,
): Promise<DifferenceView> {
  const mod = await run.load("modulate", row, clip);
  const knn = await run.load("knn", row, clip);
  const final = await predictedLabels(run, row, clip);
  const diff = mod.tensors.diff as Tensor<"U8">; // [N, L, H0, W0]
  const [N, L, H0, W0] = diff.shape;
  if (frame < 0 || frame >= N) throw new UserError(`frame ${frame} is outside 0..${N - 1} (clip ${clip})`);
  const labels = mod.json.labels as number[];
  const coarseT = knn.tensors.coarse as Tensor<"I32">;
  const [, h, w] = coarseT.shape;
  const coarse = planeOf(coarseT, frame) as Int32Array;
  const plane = H0 * W0;
  const diffs = labels.map((_, l) =>
    u8([H0, W0], diff.data.subarray((frame * L + l) * plane, (frame * L + l + 1) * plane))
  );
  const area = new Map<number, number>();
  for (const v of coarse) area.set(v, (area.get(v) ?? 0) + 1);
  const present = labels.filter((l) => area.has(l)).sort((a, b) => area.get(b)! - area.get(a)!);
  const rowS = run.param(row, "modulation.filter_strength") as number;
  const s = filterStrength ?? (rowS < 1 ? rowS : 0.7);
  const grid = { labels: coarse, h, w };
  return {
    frame,
    labels,
    diffs,
    present,
    coarse,
    grid: [h, w],
    size0: [H0, W0],
    unfiltered: labelsFromDifferences(diffs, labels, { filterStrength: 1 }),
    filtered: labelsFromDifferences(diffs, labels, { filterStrength: s, coarse: grid }),
    filterStrength: s,
    final: planeOf(final, frame) as Uint8Array,
  };
}

/** The soft mask m̂ of `label` in a difference view (Lanczos-upsampled coarse mask, as in filtering). */
export function viewSoftMask(v: DifferenceView, label: number): Float64Array {
  return softMask({ labels: v.coarse, h: v.grid[0], w: v.grid[1] }, label, v.size0[0], v.size0[1]);
}

/** Per-frame IoU of one row and clip: mIoU (percent) of each annotated frame against its GT. */
export interface FrameIou {
  row: string;
  clip: string;
  frame: number;
  name: string;
  /** Mean IoU over the classes present in this frame's GT (null when none is). */
  iou: number | null;
}

/** mIoU of every annotated frame of a clip, from the cached labels and the dataset GT (metrics/miou.ts). */
export async function perFrameIoU(run: RunView, row: string, clip: string): Promise<FrameIou[]> {
  const labels = await predictedLabels(run, row, clip);
  const names = (await run.load("labels", row, clip)).json.frames as string[];
  const dc = datasetClip(run, row, clip);
  const ids = dc.classes.map((c) => c.id);
  const [, H, W] = labels.shape;
  const out: FrameIou[] = [];
  names.forEach((name, f) => {
    const i = dc.frames.findIndex((fr) => fr.name === name);
    const gt = i >= 0 ? readGt(dc, i) : null;
    if (!gt) return;
    let pred: ArrayLike<number> = planeOf(labels, f);
    if (gt.shape[0] !== H || gt.shape[1] !== W) {
      pred = resizeNearest(u8([H, W], pred as Uint8Array), gt.shape[0], gt.shape[1]).data;
    }
    const cm = new ConfusionMatrix(ids);
    cm.add(gt.data, pred);
    const m = cm.result().mIoU;
    out.push({ row, clip, frame: f, name, iou: m === null ? null : 100 * m });
  });
  return out;
}

/** Frame-0 K-Means labels for another K (kmeans `ref_labels` [h, w]); computes the kmeans stage if needed. */
export async function kmeansWithK(
  run: RunView,
  row: string,
  clip: string,
  k: number,
): Promise<
  { k: number; refLabels: Int32Array; clusters: Int32Array; grid: [number, number]; labels: number[] }
> {
  // The kmeans inputs do not depend on K: require them cached (load throws the "how to produce" message).
  for (const up of ["frames", "features"]) if (!run.has(up, row, clip)) await run.load(up, row, clip);
  const variant = await run.withSet([`kmeans.k=${k}`]);
  const a = await variant.compute("kmeans", row, clip);
  const ref = a.tensors.ref_labels as Tensor<"I32">;
  return {
    k,
    refLabels: ref.data,
    clusters: (a.tensors.clusters as Tensor<"I32">).data,
    grid: [ref.shape[0], ref.shape[1]],
    labels: a.json.labels as number[],
  };
}
