import { assertAlmostEquals, assertEquals } from "../assert.ts";
import { meanVideoConsistency, nanmean, vcWindows } from "../../pipeline/metrics/vc.ts";

// Video A: 3 frames of 4 pixels, n = 2 → N − n = 1 window (i = 0; the last window, frames 1–2, is excluded).
//   gt:   f0 [1 1 2 2]  f1 [1 2 2 2]  f2 [1 2 2 0]
//   pred: f0 [5 5 6 6]  f1 [5 5 6 7]  f2 [9 9 9 9]
// window 0: G = gt0 == gt1 = [T F T T] (|G| = 3); P = pred0 == pred1 = [T T T F]; G∧P = [T F T F] → VC = 2/3.
// (The excluded window would be G = [T T T F], P = all F → 0.)
const A = {
  gt: [[1, 1, 2, 2], [1, 2, 2, 2], [1, 2, 2, 0]],
  pred: [[5, 5, 6, 6], [5, 5, 6, 7], [9, 9, 9, 9]],
};
// Video B: 4 frames of 2 pixels, GT constant → G = both pixels; n = 2 → windows i = 0, 1.
//   pred f0 [1 1], f1 [1 2], f2 [1 2], f3 [0 0]: window 0 → P = [T F] → 1/2; window 1 → P = [T T] → 1.
const B = { gt: [[3, 3], [3, 3], [3, 3], [3, 3]], pred: [[1, 1], [1, 2], [1, 2], [0, 0]] };

Deno.test("VC windows of a 3-frame toy (n = 2): N − n windows, hand-computed", () => {
  const w = vcWindows(A.gt, A.pred, 2);
  assertEquals(w.length, 1);
  assertAlmostEquals(w[0], 2 / 3, 1e-15);
  assertEquals(vcWindows(B.gt, B.pred, 2), [0.5, 1]);
  // N ≤ n: the video is skipped
  assertEquals(vcWindows(A.gt, A.pred, 3), []);
});

Deno.test("mVC pools all windows of all videos (not a mean of per-video means), NaN windows dropped", () => {
  // pooled: (2/3 + 1/2 + 1)/3 = 0.72222; per-video mean would be (2/3 + 3/4)/2 = 0.70833
  // Video C: GT changes at every pixel between frames 0 and 1 → |G| = 0 → NaN, ignored
  const C = { gt: [[1, 2], [2, 1], [2, 1]], pred: [[0, 0], [0, 0], [0, 0]] };
  assertEquals(vcWindows(C.gt, C.pred, 2).map(Number.isNaN), [true]);
  assertAlmostEquals(meanVideoConsistency([A, B, C], 2)!, (2 / 3 + 0.5 + 1) / 3, 1e-15);
  assertEquals(nanmean([NaN]), null);
});

Deno.test("mVC_8 on 10 frames uses windows 0 and 1; raw values, no ignore handling", () => {
  // GT all 255 (void) everywhere — still counted (raw values). pred constant except frame 9 (outside both
  // windows: window 1 covers frames 1..8) and frame 4 pixel 1 → window 0: P = [T F], window 1: P = [T F]
  const gt = Array.from({ length: 10 }, () => [255, 255]);
  const pred = Array.from({ length: 10 }, (_, f) => (f === 9 ? [7, 7] : f === 4 ? [1, 2] : [1, 1]));
  assertEquals(vcWindows(gt, pred, 8), [0.5, 0.5]);
  assertEquals(vcWindows(gt, pred, 16), []);
});
