/**
 * Stage `evaluate` (row-scoped): reads the unit-scoped labels stage of every clip (inputs[`<labels stage>/<clip>`]:
 * tensors.labels U8|I32 [F, H, W], json.frames = frame names) and the GT files of the clips (config `dataset`), and
 * returns json.metrics {mIoU, mVC8, mVC16 (percent, null when undefined), classIoU: {class name: percent | null},
 * frames: number evaluated} (`pipeline/metrics/`).
 * @module
 */
import type { Json, Stage } from "../dag/stage.ts";
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import { Evaluator, pairWithGt } from "../metrics/evaluate.ts";
import { groupOf, keysOf } from "./params.ts";

/** The dataset keys the stage reads: not `dataset.clips` (the row's clips arrive as `units`). */
const DATASET_FIELDS = ["kind", "root", "split", "max_frames"];

const pct = (v: number | null) => (v === null ? null : 100 * v);

/** Build the row-scoped `evaluate` stage reading the labels of the unit-scoped stage `labelsStage`. */
export function makeEvaluateStage(labelsStage = "labels"): Stage {
  const clipsOf = (p: Record<string, unknown>) =>
    loadDataset({
      ...datasetSpecFromConfig(groupOf(p, "dataset", DATASET_FIELDS)),
      clips: p.units as string[],
    });
  return {
    name: "evaluate",
    version: 1,
    params: keysOf("dataset", DATASET_FIELDS),
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
