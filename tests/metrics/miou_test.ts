import { assertAlmostEquals, assertEquals } from "../assert.ts";
import { ConfusionMatrix } from "../../pipeline/metrics/miou.ts";

// Classes [1, 2, 3]; GT values 0 and 255 are not classes (ignored); predictions 0/255 are "void" (misses).
//   pixel:  0  1  2  3  4  5  6    7  8    9
//   GT:     1  1  1  2  2  3  0  255  2    1
//   pred:   1  1  2  2  0  3  1    1  255  3
// class 1: TP 2 (px 0, 1), FN 2 (px 2 → 2, px 9 → 3), FP 0           → IoU 2/4 = 0.5
// class 2: TP 1 (px 3), FN 2 (px 4 → void, px 8 → void), FP 1 (px 2) → IoU 1/4 = 0.25
// class 3: TP 1 (px 5), FN 0, FP 1 (px 9)                              → IoU 1/2 = 0.5
// px 6, 7 are ignored (their predictions count for nothing). mIoU = (0.5 + 0.25 + 0.5)/3 = 0.41667
const GT = [1, 1, 1, 2, 2, 3, 0, 255, 2, 1];
const PRED = [1, 1, 2, 2, 0, 3, 1, 1, 255, 3];

Deno.test("mIoU with ignored GT and void predictions (hand-computed)", () => {
  const cm = new ConfusionMatrix([1, 2, 3]);
  cm.add(GT, PRED);
  const r = cm.result();
  assertEquals(r.perClass, [0.5, 0.25, 0.5]);
  assertAlmostEquals(r.mIoU!, 1.25 / 3, 1e-15);
});

Deno.test("mIoU accumulates one matrix over frames (dataset level), not a mean of per-frame scores", () => {
  const cm = new ConfusionMatrix([1, 2, 3]);
  cm.add(GT.slice(0, 4), PRED.slice(0, 4)); // alone: class 1 → 2/3, class 2 → 1/2
  cm.add(GT.slice(4), PRED.slice(4));
  assertEquals(cm.result().perClass, [0.5, 0.25, 0.5]);
});

Deno.test("classes without GT pixels are left out of the mean even when predicted", () => {
  // add class 4 and one pixel GT 1 predicted 4: class 1 → TP 2, FN 3 → 2/5 = 0.4; class 4 has no GT → null
  // mIoU = (0.4 + 0.25 + 0.5)/3 = 0.38333
  const cm = new ConfusionMatrix([1, 2, 3, 4]);
  cm.add([...GT, 1], [...PRED, 4]);
  const r = cm.result();
  assertEquals(r.perClass, [0.4, 0.25, 0.5, null]);
  assertAlmostEquals(r.mIoU!, 1.15 / 3, 1e-15);
  assertEquals(new ConfusionMatrix([1]).result().mIoU, null);
});

Deno.test("class ids beyond 255 work", () => {
  const cm = new ConfusionMatrix([300, 7]);
  cm.add([300, 300, 7], [300, 7, 7]); // 300: TP 1 FN 1 → 0.5; 7: TP 1 FP 1 → 0.5
  assertEquals(cm.result().perClass, [0.5, 0.5]);
});
