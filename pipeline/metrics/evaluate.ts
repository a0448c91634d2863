/**
 * Evaluation of predicted label maps against a dataset's GT: dataset-level mIoU (`miou.ts`) over all annotated
 * frames of all clips, and mVC_8 / mVC_16 (`vc.ts`) pooled over clips, on the annotated frames in clip order.
 * Predictions are at the frames' original size (the method upsamples to it, also when it processes Cityscapes at
 * a reduced size), so a GT of another size is a dataset error reported with the GT file's name.
 *
 * The `evaluate` stage is row-scoped: it reads the unit-scoped labels stage of every clip
 * (inputs[`<labels stage>/<clip>`]: tensors.labels U8|I32 [F, H, W], json.frames = frame names) and the GT files
 * of the clips (config `dataset`), and returns json.metrics {mIoU, mVC8, mVC16 (percent, null when undefined),
 * classIoU: {class name: percent | null}, frames: number evaluated}.
 * @module
 */
import { fail } from "../errors.ts";
import type { Json, Stage } from "../dag/stage.ts";
import type { ClassInfo, VideoClip } from "../data/clip.ts";
import { datasetSpecFromConfig, loadDataset, readGt } from "../data/dataset.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { ConfusionMatrix } from "./miou.ts";
import { nanmean, vcWindows } from "./vc.ts";

/** One clip's annotated frames: GT and prediction per frame, in clip order. */
export interface EvalVideo {
  /** GT label maps [H, W] of the annotated frames. */
  gt: Tensor<"U8">[];
  /** Predicted label maps of the same frames, same sizes. */
  pred: (Tensor<"U8"> | Tensor<"I32">)[];
}

/** Metrics as fractions in [0, 1] (null = undefined, e.g. no clip longer than n frames). */
export interface EvalResult {
  /** Dataset-level mIoU (fraction). */
  mIoU: number | null;
  /** mVC8 (fraction). */
  mVC8: number | null;
  /** mVC16 (fraction). */
  mVC16: number | null;
  /** IoU per evaluated class (null: no GT pixels). */
  classIoU: { id: number; name: string; iou: number | null }[];
  /** Annotated frames evaluated. */
  frames: number;
}

/** Streaming evaluation: add one video at a time (only the confusion matrix and VC windows are kept). */
export class Evaluator {
  readonly #classes: readonly ClassInfo[];
  readonly #cm: ConfusionMatrix;
  readonly #vc8: number[] = [];
  readonly #vc16: number[] = [];
  #frames = 0;

  /** An evaluator over these classes (GT values outside them are ignored). */
  constructor(classes: readonly ClassInfo[]) {
    this.#classes = classes;
    this.#cm = new ConfusionMatrix(classes.map((c) => c.id));
  }

  /** Accumulate one video's annotated frames. */
  add(v: EvalVideo): void {
    if (v.gt.length !== v.pred.length) {
      throw new Error(`evaluate: ${v.gt.length} GT frames vs ${v.pred.length} predictions`);
    }
    // Sizes agree by construction (pairWithGt refuses a GT of another size than its frame, naming the file).
    const preds = v.gt.map((g, i) => {
      const p = v.pred[i];
      if (p.shape[0] !== g.shape[0] || p.shape[1] !== g.shape[1]) {
        throw new Error(`evaluate: prediction [${p.shape}] vs GT [${g.shape}]`);
      }
      return p.data as ArrayLike<number>;
    });
    v.gt.forEach((g, i) => this.#cm.add(g.data, preds[i]));
    this.#frames += v.gt.length;
    const gts = v.gt.map((g) => g.data);
    this.#vc8.push(...vcWindows(gts, preds, 8));
    this.#vc16.push(...vcWindows(gts, preds, 16));
  }

  /** Metrics over everything added so far. */
  result(): EvalResult {
    const r = this.#cm.result();
    return {
      mIoU: r.mIoU,
      mVC8: nanmean(this.#vc8),
      mVC16: nanmean(this.#vc16),
      classIoU: this.#classes.map((c, i) => ({ id: c.id, name: c.name, iou: r.perClass[i] })),
      frames: this.#frames,
    };
  }
}

/** mIoU over `classes` (GT values outside them ignored) + mVC_8/16 of already-loaded videos. */
export function evaluateVideos(videos: readonly EvalVideo[], classes: readonly ClassInfo[]): EvalResult {
  const ev = new Evaluator(classes);
  for (const v of videos) ev.add(v);
  return ev.result();
}

/** The annotated frames of `clip` paired with a prediction stack [F, H, W] named by `frameNames` (or by index). */
export function pairWithGt(clip: VideoClip, labels: Tensor, frameNames?: readonly string[]): EvalVideo {
  if (labels.shape.length !== 3 || (labels.dtype !== "U8" && labels.dtype !== "I32")) {
    throw new Error(
      `evaluate: labels of clip ${clip.name} must be U8/I32 [F, H, W], got ${labels.dtype} [${labels.shape}]`,
    );
  }
  const [F, H, W] = labels.shape;
  const index = new Map((frameNames ?? clip.frames.slice(0, F).map((f) => f.name)).map((n, i) => [n, i]));
  const out: EvalVideo = { gt: [], pred: [] };
  clip.frames.forEach((fr, i) => {
    const j = index.get(fr.name);
    if (fr.gt === null || j === undefined) return;
    const gt = readGt(clip, i)!;
    if (gt.shape[0] !== H || gt.shape[1] !== W) {
      // Predictions are at the frames' original size (all frames of a clip share it): a GT of another size is a
      // dataset error, not something to paper over by resizing.
      fail(fr.gt, `GT is ${gt.shape[1]}×${gt.shape[0]} but its frame is ${W}×${H} (expected a label PNG of its frame's size)`);
    }
    const data = (labels.data as Uint8Array | Int32Array).subarray(j * H * W, (j + 1) * H * W);
    out.gt.push(gt);
    out.pred.push({ dtype: labels.dtype, shape: [H, W], data } as Tensor<"I32">);
  });
  return out;
}

const pct = (v: number | null) => (v === null ? null : 100 * v);

/** Build the row-scoped `evaluate` stage reading the labels of the unit-scoped stage `labelsStage`. */
export function makeEvaluateStage(labelsStage = "labels"): Stage {
  const clipsOf = (p: Record<string, unknown>) =>
    loadDataset({
      ...datasetSpecFromConfig(p["dataset"] as Record<string, unknown>),
      clips: p.units as string[],
    });
  return {
    name: "evaluate",
    version: 1,
    params: ["dataset"],
    upstream: [labelsStage],
    scope: "row",
    role: "metrics",
    inputFiles: (p) => clipsOf(p).flatMap((c) => c.frames.flatMap((f) => (f.gt ? [f.gt] : []))),
    run(inputs, p, ctx) {
      const clips = clipsOf(p);
      const classes = clips[0]?.classes ?? [];
      if (classes.length === 0) {
        ctx.log("evaluate: the dataset has no classes (no GT), metrics are undefined");
      }
      const ev = new Evaluator(classes);
      clips.forEach((clip, i) => {
        const a = inputs[`${labelsStage}/${clip.name}`];
        if (!a) throw new Error(`evaluate: no "${labelsStage}" artifact for clip ${clip.name}`);
        ev.add(pairWithGt(clip, a.tensors.labels, a.json.frames as string[] | undefined)); // one clip's GT at a time
        ctx.progress(i + 1, clips.length, "clips evaluated");
      });
      const r = ev.result();
      const classIoU: Record<string, Json> = {};
      for (const c of r.classIoU) classIoU[c.name] = pct(c.iou);
      return Promise.resolve({
        tensors: {},
        json: {
          metrics: { mIoU: pct(r.mIoU), mVC8: pct(r.mVC8), mVC16: pct(r.mVC16), classIoU, frames: r.frames },
        },
      });
    },
  };
}

/** The `evaluate` stage over a labels stage named "labels". */
export const evaluateStage: Stage = makeEvaluateStage("labels");
