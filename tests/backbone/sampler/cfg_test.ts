import { assertEquals, assertLess, assertThrows } from "../../assert.ts";
import {
  combineCfg,
  doubleBatch,
  guided,
  linearFrameScales,
} from "../../../pipeline/backbone/sampler/cfg.ts";
import { f32 } from "../../../pipeline/tensor/tensor.ts";

// batch of 2 samples × 2 values: uncond rows then cond rows
const doubled = f32([4, 2], new Float32Array([1, 2, 3, 4, /* cond */ 2, 0, 5, 4]));

Deno.test("combineCfg: ε_u + s(ε_c − ε_u), scalar and per-sample scales, s = 1 gives the cond half", () => {
  assertEquals([...combineCfg(doubled, 5).data], [1 + 5 * 1, 2 + 5 * -2, 3 + 5 * 2, 4]);
  assertEquals([...combineCfg(doubled, 1).data], [2, 0, 5, 4]);
  assertEquals([...combineCfg(doubled, 0).data], [1, 2, 3, 4]);
  assertEquals([...combineCfg(doubled, [1, 2.5]).data], [2, 0, 3 + 2.5 * 2, 4]);
  assertEquals(combineCfg(doubled, 2).shape, [2, 2]);
  assertThrows(() => combineCfg(doubled, [1, 2, 3]), Error, "3 guidance scales for a batch of 2");
  assertThrows(() => combineCfg(f32([3, 1]), 2), Error, "odd");
});

Deno.test("doubleBatch + guided: the model sees [x; x] and the result is combined", async () => {
  const x = f32([1, 3], new Float32Array([1, 2, 3]));
  assertEquals([...doubleBatch(x).data], [1, 2, 3, 1, 2, 3]);
  assertEquals(doubleBatch(x).shape, [2, 3]);
  // fake model: uncond half → 0, cond half → its input
  const model = (inp: typeof x) => {
    assertEquals(inp.shape, [2, 3]);
    const out = new Float32Array(6);
    out.set(inp.data.subarray(3), 3);
    return f32(inp.shape, out);
  };
  const g = guided(model, 5);
  assertEquals([...(await g(x, { step: 0, sigma: 1, sigmaNext: 0, timestep: 0 })).data], [5, 10, 15]);
});

Deno.test("SVD linear per-frame scales: linspace(1.0, 2.5, 14)", () => {
  const s = linearFrameScales(14, 1.0, 2.5);
  assertEquals(s.length, 14);
  assertEquals(s[0], 1);
  assertEquals(s[13], 2.5);
  for (let i = 1; i < 14; i++) assertLess(Math.abs(s[i] - s[i - 1] - 1.5 / 13), 1e-12);
  assertEquals([...linearFrameScales(1, 2, 3)], [2]);
});
