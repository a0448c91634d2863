import { assert, assertEquals, assertLess, assertNotEquals, assertThrows } from "../../assert.ts";
import { addNoise, gaussianNoise, GaussianRng } from "../../../pipeline/backbone/sampler/noise.ts";
import { f32 } from "../../../pipeline/tensor/tensor.ts";

Deno.test("same seed ⇒ same ε; reseed restarts; chunked fills continue one stream", () => {
  const a = gaussianNoise(1, [2, 4, 8, 8]), b = gaussianNoise(1, [2, 4, 8, 8]);
  assertEquals([...a.data], [...b.data]);
  assertNotEquals([...gaussianNoise(2, [512]).data], [...gaussianNoise(1, [512]).data]);
  // seeds differing only in the high 32-bit word give different streams
  assertNotEquals([...gaussianNoise(1 + 2 ** 32, [64]).data], [...gaussianNoise(1, [64]).data]);
  const rng = new GaussianRng(1);
  const parts = [new Float32Array(3), new Float32Array(5), new Float32Array(504)]; // odd split: Box–Muller spare kept
  for (const p of parts) rng.fill(p);
  assertEquals([...parts[0], ...parts[1], ...parts[2]], [...a.data.subarray(0, 512)]);
  rng.reseed(1);
  assertEquals([...rng.fill(new Float32Array(16))], [...a.data.subarray(0, 16)]);
  assertThrows(() => new GaussianRng(0.5), RangeError);
});

Deno.test("moments of N(0,1): mean, variance, 4th moment, 1σ mass, lag-1 correlation (n = 1e6)", () => {
  const n = 1_000_000;
  const x = gaussianNoise(1234, [n]).data;
  let s1 = 0, s2 = 0, s4 = 0, within = 0, lag = 0, minV = Infinity, maxV = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    s1 += v;
    s2 += v * v;
    s4 += v ** 4;
    if (Math.abs(v) < 1) within++;
    if (i) lag += v * x[i - 1];
    minV = Math.min(minV, v);
    maxV = Math.max(maxV, v);
  }
  // 5-standard-error bounds: se(mean) = 1e-3, se(var) ≈ 1.4e-3, se(m4) ≈ 9.8e-3, se(p) ≈ 4.7e-4, se(corr) = 1e-3
  assertLess(Math.abs(s1 / n), 5e-3);
  assertLess(Math.abs(s2 / n - 1), 7e-3);
  assertLess(Math.abs(s4 / n - 3), 5e-2);
  assertLess(Math.abs(within / n - 0.682689), 2.4e-3);
  assertLess(Math.abs(lag / n), 5e-3);
  assert(minV < -4 && maxV > 4, `tails reach ±4 (got ${minV}, ${maxV})`);
});

Deno.test("addNoise: x = z0 + σ·ε", () => {
  const z0 = f32([1, 3], new Float32Array([1, 2, 3])), eps = f32([1, 3], new Float32Array([0.5, -1, 2]));
  assertEquals([...addNoise(z0, 0.38657, eps).data], [
    ...new Float32Array([1 + 0.193285, 2 - 0.38657, 3 + 0.77314]),
  ]);
  assertThrows(() => addNoise(z0, 1, f32([3])), Error, "shape");
});
