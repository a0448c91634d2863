import { assertAlmostEquals, assertEquals, assertThrows } from "../assert.ts";
import {
  differenceMap,
  floatToL,
  labelsFromDifferences,
  labelsFromImagePairs,
  rgbDifference,
  softMask,
} from "../../pipeline/seg/labels.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

/** 1×n RGB image from per-pixel grey values (all channels equal) or explicit triples. */
const img = (px: number[][]) => u8([1, px.length, 3], Uint8Array.from(px.flat()));

Deno.test("uint8 difference wraps like numpy: |d| = 16 → 0, 17 → √33, 15 → 15, −3 → 3", () => {
  // one channel differs per pixel, the others are equal.
  // d = 16: 16² = 256 ≡ 0 (mod 256) → 0;  d = 17: 289 ≡ 33 → √33;  d = 15: 225 → 15;
  // d = −3: (−3 mod 256)² = 253² = 64009 ≡ 9 → 3;  d = 32 in all channels: 1024 ≡ 0 → 0
  const a = img([[116, 0, 0], [117, 0, 0], [115, 0, 0], [7, 0, 0], [132, 132, 132]]);
  const b = img([[100, 0, 0], [100, 0, 0], [100, 0, 0], [10, 0, 0], [100, 100, 100]]);
  const ref = rgbDifference(a, b, "reference_uint8");
  [0, Math.sqrt(33), 15, 3, 0].forEach((v, i) => assertAlmostEquals(ref[i], v, 1e-12));
  // float_l2: the true norms 16, 17, 15, 3, √(3·32²) = 55.43
  const fl = rgbDifference(a, b, "float_l2");
  [16, 17, 15, 3, Math.sqrt(3 * 1024)].forEach((v, i) => assertAlmostEquals(fl[i], v, 1e-12));
  // the channel sum does not wrap: three channels of d = 15 → √675 = 25.98 (675 > 255)
  assertAlmostEquals(
    rgbDifference(img([[15, 15, 15]]), img([[0, 0, 0]]), "reference_uint8")[0],
    Math.sqrt(675),
    1e-12,
  );
});

Deno.test("float → L truncates through float32 and clips", () => {
  // 12.7 → 12; 255.5 → 255; −1 → 0; 12.999999999 rounds to 13.0f first → 13
  assertEquals(Array.from(floatToL(Float64Array.from([12.7, 255.5, -1, 12.999999999, 0]))), [
    12,
    255,
    0,
    13,
    0,
  ]);
});

Deno.test("differenceMap = blur + truncate: a flat difference of 10 stays 10", () => {
  const a = u8([3, 4, 3], new Uint8Array(36).fill(110)), b = u8([3, 4, 3], new Uint8Array(36).fill(100));
  // per pixel √(3·10²) = 17.32 (both modes), blurred constant, truncated → 17
  assertEquals(Array.from(differenceMap(a, b, "float_l2").data), new Array(12).fill(17));
  assertEquals(Array.from(differenceMap(a, b, "reference_uint8").data), new Array(12).fill(17));
});

Deno.test("label decision: per-map max normalisation, optional filtering with s, ties → first label", () => {
  // Two labels [3, 7] on a 1×2 frame whose coarse grid is also 1×2 (Lanczos at equal size = identity).
  // D_3 = [10, 9] → D̂_3 = [10/10.00001, 9/10.00001] ≈ [1, 0.9];  D_7 = [10, 8] → D̂_7 ≈ [1, 0.8]
  const d3 = u8([1, 2], Uint8Array.from([10, 9])), d7 = u8([1, 2], Uint8Array.from([10, 8]));
  // unfiltered (s = 1): pixel 0 ties (10/10.00001 both) → first = 3; pixel 1: 0.9 > 0.8 → 3
  assertEquals(Array.from(labelsFromDifferences([d3, d7], [3, 7], { filterStrength: 1 }).data), [3, 3]);
  // coarse = [7, 7]: m̂_3 = 0, m̂_7 = 1 → D̃_3 = 0.7·[1, 0.9] = [0.7, 0.63], D̃_7 = [1, 0.8] → [7, 7]
  const coarse = { labels: [7, 7], h: 1, w: 2 };
  assertEquals(Array.from(labelsFromDifferences([d3, d7], [3, 7], { filterStrength: 0.7, coarse }).data), [
    7,
    7,
  ]);
  // all-zero pixels → the first label
  const z = u8([1, 2], new Uint8Array(2));
  assertEquals(Array.from(labelsFromDifferences([z, z], [4, 9], { filterStrength: 1 }).data), [4, 4]);
  assertThrows(
    () => labelsFromDifferences([d3, d7], [3, 7], { filterStrength: 0.7 }),
    Error,
    "needs the coarse map",
  );
});

Deno.test("soft mask = Lanczos-resized 0/255 coarse mask / 255 (values from Pillow 9.4)", () => {
  // coarse 3×4 grid, label 2 at [0 1 1 0 / 0 1 0 0 / 1 1 0 0]; resized to 9×13 (same mask as the ops test):
  // Pillow gives first row 11, 11, 57, 129, 220, 255, … → m̂ = 11/255, …
  const grid = { labels: [0, 2, 2, 0, 0, 2, 0, 0, 2, 2, 0, 0], h: 3, w: 4 };
  const m = softMask(grid, 2, 9, 13);
  [11, 11, 57, 129, 220, 255].forEach((v, i) => assertAlmostEquals(m[i], v / 255, 1e-15));
});

Deno.test("labels from ± image pairs: blur (reflect-101), truncation, normalisation, argmax", () => {
  // 1×9 frame, labels [1, 2]; label 1 perturbs pixel 1 by ±5, label 2 pixel 7 (|diff| 10 < 16 in all channels):
  // D = √(3·10²) = 17.32 at the perturbed pixel. Blur of label 1 (weights k = [.1782, .2105, .2225, .2105, .1782]):
  // x=0: window reflects to pixels [2, 1, 0, 1, 2] → pixel 1 twice: (k1 + k3)·17.32 = 7.29 → 7;
  // x=1: window [1, 0, 1, 2, 3] → (k0 + k2)·17.32 = 6.94 → 6; x=2: k1·17.32 = 3.65 → 3;
  // x=3: k0·17.32 = 3.09 → 3; x ≥ 4: 0.
  // Label 2 is the mirror image. Normalised by the maps' max (7): x 0..3 → label 1, x=4 all zero → first (1),
  // x 5..8 → label 2.
  const base = Array.from({ length: 9 }, () => [100, 100, 100]);
  const shift = (p: number, d: number) => img(base.map((px, i) => px.map((v) => (i === p ? v + d : v))));
  const pairs = [{ plus: shift(1, 5), minus: shift(1, -5) }, { plus: shift(7, 5), minus: shift(7, -5) }];
  assertEquals(Array.from(differenceMap(pairs[0].plus, pairs[0].minus, "reference_uint8").data), [
    7,
    6,
    3,
    3,
    0,
    0,
    0,
    0,
    0,
  ]);
  const lab = labelsFromImagePairs(pairs, [1, 2], "reference_uint8", { filterStrength: 1 });
  assertEquals(Array.from(lab.data), [1, 1, 1, 1, 1, 2, 2, 2, 2]);
});
