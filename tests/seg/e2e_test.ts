/**
 * End to end without a diffusion model: synthetic video (written as a CamVid-layout clip) → synthetic features
 * (class content + moving surface codes + noise) → kmeans → cbr → knn stages → labels from simulated ± decoded
 * images (uint8 difference, blur, Lanczos-filtered argmax) at full resolution → evaluate stage reading the GT PNGs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import type { Artifacts, StageContext } from "../../pipeline/dag/stage.ts";
import { gtAtGrid } from "../../pipeline/data/dataset.ts";
import {
  syntheticFeatures,
  syntheticModulationPairs,
  syntheticVideo,
  writeSyntheticCamvid,
} from "../../pipeline/data/synthetic.ts";
import { evaluateStage } from "../../pipeline/metrics/evaluate.ts";
import { labelsFromImagePairs } from "../../pipeline/seg/labels.ts";
import { cbrStage, kmeansStage, knnStage } from "../../pipeline/seg/stages.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

const N = 28, H = 160, W = 256, h = 10, w = 16;
const ctx: StageContext = { progress() {}, log() {} };
const video = syntheticVideo({ frames: N, height: H, width: W, seed: 1 });
const names = Array.from({ length: N }, (_, i) => String(i).padStart(4, "0"));
const features: Artifacts = {
  tensors: {
    features_agg: syntheticFeatures(video, { gridH: h, gridW: w, channels: 32, noise: 0.25, seed: 7, noiseSeed: 11 }),
    features_cbr: syntheticFeatures(video, {
      gridH: h,
      gridW: w,
      channels: 32,
      noise: 0.3,
      classWeight: 0.5,
      appearanceWeight: 3,
      seed: 7,
      noiseSeed: 12,
    }),
  },
  json: { grid: [h, w], frames: names },
};
const frames: Artifacts = { tensors: { gt_grid: gtAtGrid(u8([H, W], video.gt.data.subarray(0, H * W)), h, w) }, json: {} };

/** Coarse maps through the three stages, then full-resolution labels [N, H, W]. */
async function segment(batchSize: number, cbr: boolean): Promise<Artifacts> {
  const p = {
    "kmeans.k": 20,
    "kmeans.n_init": 10,
    "kmeans.max_iter": 300,
    "kmeans.tol": 1e-4,
    "kmeans.fit": "batch",
    seed: 1,
    batch_size: batchSize,
    dedupe_last_batch: false,
    "knn.k": 4,
    "cbr.enabled": cbr,
    "cbr.spatial_threshold": 1,
    "cbr.abs_threshold": false,
  };
  const km = await kmeansStage.run({ features, frames }, p, ctx);
  const cb = await cbrStage.run({ features }, p, ctx);
  const kn = await knnStage.run({ features, kmeans: km, cbr: cb }, p, ctx);
  const labels = kn.json.labels as number[];
  const coarse = kn.tensors.coarse.data as Int32Array;
  const out = new Uint8Array(N * H * W);
  for (let f = 0; f < N; f++) {
    const frame = u8([H, W, 3], video.frames.data.subarray(f * H * W * 3, (f + 1) * H * W * 3));
    const gt = u8([H, W], video.gt.data.subarray(f * H * W, (f + 1) * H * W));
    const cf = coarse.subarray(f * h * w, (f + 1) * h * w);
    const pairs = syntheticModulationPairs(frame, gt, cf, gtAtGrid(gt, h, w).data, { h, w }, labels);
    const lab = labelsFromImagePairs(pairs, labels, "reference_uint8", { filterStrength: 0.7, coarse: { labels: cf, h, w } });
    out.set(lab.data, f * H * W);
  }
  return { tensors: { labels: u8([N, H, W], out) }, json: { frames: names } };
}

Deno.test("synthetic video: kmeans → cbr → knn → labels → evaluate; batch 14 + CBR beats frame-by-frame", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-e2e-"));
  try {
    await writeSyntheticCamvid(dir, video, "synthetic");
    const evalParams = {
      dataset: { kind: "camvid", root: dir, split: null, clips: "all", max_frames: null },
      units: ["synthetic"],
    };
    assertEquals(await evaluateStage.inputFiles!(evalParams), names.map((n) => path.join(dir, "synthetic/labels", `${n}.png`)));
    const metrics = async (labels: Artifacts) =>
      (await evaluateStage.run({ "labels/synthetic": labels }, evalParams, ctx)).json.metrics as Record<string, any>;
    const batch14 = await metrics(await segment(14, true));
    const frameByFrame = await metrics(await segment(1, true));
    assertGreater(batch14.mIoU, 90, `mIoU of batch 14 + CBR = ${batch14.mIoU}`);
    for (const c of ["sky", "road", "car", "person"]) assert(batch14.classIoU[c] > 70, `${c} IoU ${batch14.classIoU[c]}`);
    assertGreater(batch14.mVC8, frameByFrame.mVC8, `mVC8 ${batch14.mVC8} (batch 14 + CBR) vs ${frameByFrame.mVC8} (batch 1)`);
    assertEquals(batch14.frames, N);
    console.log(JSON.stringify({ batch14, frameByFrame }));
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
