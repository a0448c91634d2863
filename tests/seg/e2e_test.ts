/**
 * End to end without a diffusion model, at the reference's two resolutions: a synthetic video at its original
 * size 290×180 (written as a CamVid-layout clip) is resized to the processing size 256×128 (PIL bicubic; GT and
 * surface ids nearest), synthetic features (class content + moving surface codes + noise) on the 16×8 grid →
 * kmeans → cbr → knn stages → simulated ± decoded images at processing size, bilinearly resized to the original
 * size → uint8 difference, blur, Lanczos-filtered argmax → evaluate stage reading the original GT PNGs.
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
  type SyntheticVideo,
  syntheticVideo,
  writeSyntheticCamvid,
} from "../../pipeline/data/synthetic.ts";
import { evaluateStage } from "../../pipeline/metrics/evaluate.ts";
import { labelsFromImagePairs } from "../../pipeline/seg/labels.ts";
import { cbrStage, kmeansStage, knnStage } from "../../pipeline/seg/stages.ts";
import { resizeBicubicPil, resizeBilinearCv, resizeNearest } from "../../pipeline/tensor/ops.ts";
import { i32, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";

const N = 28, H0 = 180, W0 = 290; // original size
const H = H0 - (H0 % 64), W = W0 - (W0 % 64), h = H / 16, w = W / 16; // processing size 256×128, grid 16×8
const ctx: StageContext = { progress() {}, log() {} };
const video = syntheticVideo({ frames: N, height: H0, width: W0, seed: 1 });
const names = Array.from({ length: N }, (_, i) => String(i).padStart(4, "0"));

const plane = <D extends "U8" | "I32">(t: Tensor<D>, f: number, C = 1): Tensor<D> => {
  const [, hh, ww] = t.shape, n = hh * ww * C;
  const data = (t.data as Uint8Array | Int32Array).subarray(f * n, (f + 1) * n);
  return (t.dtype === "U8"
    ? u8(C === 1 ? [hh, ww] : [hh, ww, C], data as Uint8Array)
    : i32([hh, ww], data as Int32Array)) as Tensor<D>;
};
/** The video at processing size, as the features stage would see it. */
function atProcessingSize(v: SyntheticVideo): SyntheticVideo {
  const frames = u8([N, H, W, 3]), gt = u8([N, H, W]), surface = i32([N, H, W]);
  for (let f = 0; f < N; f++) {
    frames.data.set(resizeBicubicPil(plane(v.frames, f, 3), H, W).data, f * H * W * 3);
    gt.data.set(resizeNearest(plane(v.gt, f), H, W).data, f * H * W);
    surface.data.set(resizeNearest(plane(v.surface, f), H, W).data, f * H * W);
  }
  return { ...v, frames, gt, surface };
}
const proc = atProcessingSize(video);
const features: Artifacts = {
  tensors: {
    features_agg: syntheticFeatures(proc, {
      gridH: h,
      gridW: w,
      channels: 32,
      noise: 0.25,
      seed: 7,
      noiseSeed: 11,
    }),
    features_cbr: syntheticFeatures(proc, {
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
// frame-0 GT from the original size straight to the grid (docs/method.md §5.3)
const frames: Artifacts = { tensors: { gt_grid: gtAtGrid(plane(video.gt, 0), h, w) }, json: {} };

/** Coarse maps through the three stages, then original-size labels [N, H0, W0]. */
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
  const out = new Uint8Array(N * H0 * W0);
  for (let f = 0; f < N; f++) {
    const gt = plane(proc.gt, f), cf = coarse.subarray(f * h * w, (f + 1) * h * w);
    const pairs = syntheticModulationPairs(plane(proc.frames, f, 3), gt, cf, gtAtGrid(gt, h, w).data, {
      h,
      w,
    }, labels)
      .map((p) => ({ plus: resizeBilinearCv(p.plus, H0, W0), minus: resizeBilinearCv(p.minus, H0, W0) }));
    const lab = labelsFromImagePairs(pairs, labels, "reference_uint8", {
      filterStrength: 0.7,
      coarse: { labels: cf, h, w },
    });
    out.set(lab.data, f * H0 * W0);
  }
  return { tensors: { labels: u8([N, H0, W0], out) }, json: { frames: names } };
}

Deno.test("synthetic video: kmeans → cbr → knn → labels → evaluate; batch 14 + CBR beats frame-by-frame", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-e2e-"));
  try {
    await writeSyntheticCamvid(dir, video, "synthetic");
    const evalParams = {
      dataset: { kind: "camvid", root: dir, split: null, clips: "all", max_frames: null },
      units: ["synthetic"],
    };
    assertEquals(
      await evaluateStage.inputFiles!(evalParams),
      names.map((n) => path.join(dir, "synthetic/labels", `${n}.png`)),
    );
    const metrics = async (labels: Artifacts) =>
      (await evaluateStage.run({ "labels/synthetic": labels }, evalParams, ctx)).json.metrics as Record<
        string,
        any
      >;
    const batch14 = await metrics(await segment(14, true));
    const frameByFrame = await metrics(await segment(1, true));
    assertGreater(batch14.mIoU, 90, `mIoU of batch 14 + CBR = ${batch14.mIoU}`);
    for (const c of ["sky", "road", "car", "person"]) {
      assert(batch14.classIoU[c] > 70, `${c} IoU ${batch14.classIoU[c]}`);
    }
    assertGreater(
      batch14.mVC8,
      frameByFrame.mVC8,
      `mVC8 ${batch14.mVC8} (batch 14 + CBR) vs ${frameByFrame.mVC8} (batch 1)`,
    );
    assertEquals(batch14.frames, N);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
