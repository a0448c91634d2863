import { syntheticVideo, syntheticFeatures } from "../../pipeline/data/synthetic.ts";
import { normalizeLinf, resizeNearest } from "../../pipeline/tensor/ops.ts";
import { firstFrameLabels, contextLoop, planBatches } from "../../pipeline/seg/video.ts";
import { ConfusionMatrix } from "../../pipeline/metrics/miou.ts";
import { vcWindows, nanmean } from "../../pipeline/metrics/vc.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

const N = 28, H = 160, W = 256, gh = 10, gw = 16, hw = gh * gw;
const t0 = performance.now();
const v = syntheticVideo({ frames: N, height: H, width: W, seed: 1 });
console.log("video", (performance.now() - t0).toFixed(0), "ms");
for (const noise of [0.2, 0.3, 0.4]) {
  const agg = normalizeLinf(syntheticFeatures(v, { gridH: gh, gridW: gw, channels: 32, noise, seed: 7, noiseSeed: 11 }));
  const cbrF = syntheticFeatures(v, { gridH: gh, gridW: gw, channels: 32, noise: 0.3, classWeight: 0.5, appearanceWeight: 3, seed: 7, noiseSeed: 12 });
  const gt0 = resizeNearest(u8([H, W], v.gt.data.subarray(0, H * W)), gh, gw);
  for (const bs of [14, 1]) {
    const plan = planBatches(N, bs);
    const F = plan[0].end - plan[0].start;
    const ff = firstFrameLabels(agg.data.subarray(0, F * hw * 32), F, { h: gh, w: gw, C: 32 }, gt0.data, { k: 20, fit: "batch", seed: 1, nInit: 10 });
    for (const cbrOn of [false, true]) {
      const res = contextLoop(plan, N, { h: gh, w: gw, C: 32, cbrC: 32 }, (r) => ({ agg: agg.data.subarray(r.start * hw * 32, r.end * hw * 32), cbr: cbrF.data.subarray(r.start * hw * 32, r.end * hw * 32) }), ff.refLabels, { k: 4, cbr: cbrOn ? { options: { spatialThreshold: 1, absThreshold: false } } : null });
      // grid-level eval vs nearest GT grid
      const cm = new ConfusionMatrix([0, 1, 2, 3]);
      const gts: Uint8Array[] = [], preds: Int32Array[] = [];
      for (let f = 0; f < N; f++) {
        const g = resizeNearest(u8([H, W], v.gt.data.subarray(f * H * W, (f + 1) * H * W)), gh, gw).data;
        const p = res.coarse.subarray(f * hw, (f + 1) * hw);
        cm.add(g, p); gts.push(g); preds.push(p);
      }
      console.log(`noise ${noise} bs ${bs} cbr ${cbrOn}: labels ${ff.labels} mIoU ${cm.result().mIoU!.toFixed(3)} ${cm.result().perClass.map(x=>x?.toFixed(2))} mVC8 ${nanmean(vcWindows(gts, preds, 8))!.toFixed(3)}`);
    }
  }
}
console.log("total", (performance.now() - t0).toFixed(0), "ms");
