// Elementwise, reduction, filter and indexing ops of pipeline/tensor/ops.ts; the resampling family is tested in
// ops_resize_test.ts.
import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import {
  argmax0,
  gather,
  gaussianBlur5,
  gaussianKernel,
  meanOf,
  normalizeLinf,
} from "../../pipeline/tensor/ops.ts";
import { f32, i32 } from "../../pipeline/tensor/tensor.ts";

Deno.test("normalizeLinf divides each vector by its max |component|", () => {
  // [2, -4, 1] / 4 = [0.5, -1, 0.25]; [0, 0, 0] stays 0; [3, 1, -1] / 3
  const t = normalizeLinf(f32([3, 3], new Float32Array([2, -4, 1, 0, 0, 0, 3, 1, -1])));
  assertEquals(Array.from(t.data), [0.5, -1, 0.25, 0, 0, 0, 1, Math.fround(1 / 3), Math.fround(-1 / 3)]);
  assertEquals(Array.from(normalizeLinf(t).data), Array.from(t.data), "idempotent");
});

Deno.test("meanOf averages elementwise", () => {
  const m = meanOf([
    f32([2], new Float32Array([1, 2])),
    f32([2], new Float32Array([3, 5])),
    f32([2], new Float32Array([2, 2])),
  ]);
  assertEquals(Array.from(m.data), [2, 3]); // (1+3+2)/3, (2+5+2)/3
});

Deno.test("Gaussian 5×5 σ=3 kernel and reflect-101 borders", () => {
  // w_i ∝ exp(−(i−2)²/18): [e^(−4/18), e^(−1/18), 1, …] = [0.80074, 0.94596, 1, …], sum 4.49341
  const k = gaussianKernel(5, 3);
  [0.1782, 0.2105, 0.2225, 0.2105, 0.1782].forEach((w, i) => assertAlmostEquals(k[i], w, 1e-4));
  assertAlmostEquals(k.reduce((a, b) => a + b, 0), 1, 1e-15);
  // a constant map stays constant
  const c = gaussianBlur5(new Float64Array(12).fill(7), 3, 4);
  for (const v of c) assertAlmostEquals(v, 7, 1e-12);
  // one row [1, 0, 0] (W = 3, H = 1): reflect-101 pads to [0, 0 | 1, 0, 0 | 0, 1]; vertical pass is a no-op
  // (all rows reflect to row 0, weights sum to 1). out[0] = k2·1 + k0·0 + k1·0 + k3·0 + k4·0 = 0.2225;
  // out[1] = k1·1 = 0.2105; out[2]: window [x0..x4] = [1, 0, 0, 0, 1] → k0·1 + k4·1 = 2·0.1782
  const r = gaussianBlur5(new Float64Array([1, 0, 0]), 1, 3);
  assertAlmostEquals(r[0], k[2], 1e-15);
  assertAlmostEquals(r[1], k[1], 1e-15);
  assertAlmostEquals(r[2], k[0] + k[4], 1e-15);
  // an impulse in the middle of a 9×9 map gives the outer product of the kernel around it, 0 elsewhere
  // (no border window reaches it): out(x, y) = k[6−x]·k[6−y] for 2 ≤ x, y ≤ 6
  const imp = new Float64Array(81);
  imp[4 * 9 + 4] = 1;
  const o = gaussianBlur5(imp, 9, 9);
  const e = (x: number) => (x >= 2 && x <= 6 ? k[6 - x] : 0);
  for (let y = 0; y < 9; y++) {
    for (let x = 0; x < 9; x++) assertAlmostEquals(o[y * 9 + x], e(x) * e(y), 1e-15);
  }
  // 5×5 with the impulse in the centre: the borders see it twice through reflect-101,
  // per axis [k0 + k4, k3, k2, k1, k0 + k4]
  const imp5 = new Float64Array(25);
  imp5[12] = 1;
  const o5 = gaussianBlur5(imp5, 5, 5);
  const e5 = [k[0] + k[4], k[3], k[2], k[1], k[0] + k[4]];
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 5; x++) assertAlmostEquals(o5[y * 5 + x], e5[x] * e5[y], 1e-15);
  }
});

Deno.test("argmax0 takes the lowest index on ties; gather copies rows", () => {
  // columns: [1,1,0] → 0 (tie 0/1), [2,5,5] → 1 (tie 1/2), [0,0,0] → 0
  const t = f32([3, 3], new Float32Array([1, 2, 0, 1, 5, 0, 0, 5, 0]));
  assertEquals(Array.from(argmax0(t).data), [0, 1, 0]);
  const g = gather(i32([3, 2], new Int32Array([1, 2, 3, 4, 5, 6])), [2, 0, 2]);
  assertEquals(g.shape, [3, 2]);
  assertEquals(Array.from(g.data), [5, 6, 1, 2, 5, 6]);
  let threw = false;
  try {
    gather(i32([1, 1]), [1]);
  } catch {
    threw = true;
  }
  assert(threw, "out-of-range index throws");
});
