/**
 * The SD passes over a scripted UNet (no ONNX): the sampler loop, CFG and the model's prediction type. A v-model's
 * guided output must be turned into ε = (σ·x_in + v)/√(σ²+1) before the Euler step; an ε-model's is used as is.
 */
import { assertEquals } from "../assert.ts";
import { type UNetRequest, type UNetRunner, unmodulatedPass } from "../../pipeline/backbone/sd/passes.ts";
import { legacyDdpmSchedule } from "../../pipeline/backbone/sampler/schedule.ts";
import { f32, type Tensor } from "../../pipeline/tensor/tensor.ts";

/** A UNet whose prediction for row r, element j is (r + 1)·0.1 + j·0.01 (uncond rows first), whatever the input. */
function scripted(prediction: string): UNetRunner {
  return {
    run(req: UNetRequest) {
      const s = req.sample!;
      const per = s.data.length / s.shape[0];
      const out = new Float32Array(s.data.length);
      for (let i = 0; i < out.length; i++) out[i] = (Math.floor(i / per) + 1) * 0.1 + (i % per) * 0.01;
      return Promise.resolve({ eps: f32(s.shape, out), taps: {}, prediction });
    },
  };
}

/** One Euler step by hand in float64, rounded to float32 where the code stores a tensor. */
function byHand(x: Tensor<"F32">, sigma: number, sigmaNext: number, g: number, v: boolean): number[] {
  const F = x.shape[0], per = x.data.length / F, c = 1 / Math.sqrt(sigma * sigma + 1);
  return Array.from(x.data, (xi, i) => {
    const f = Math.floor(i / per), j = i % per;
    const u = Math.fround(0.1 * (f + 1) + j * 0.01), k = Math.fround(0.1 * (F + f + 1) + j * 0.01);
    let e = Math.fround(u + g * (k - u));
    if (v) e = Math.fround((sigma * Math.fround(xi * c) + e) * c);
    return Math.fround(xi + (sigmaNext - sigma) * e);
  });
}

Deno.test("sd passes: an ε-model's guided output steps as is; a v-model's is converted to ε first", async () => {
  const schedule = legacyDdpmSchedule(25);
  const x = f32([2, 1, 2, 2], Float32Array.from({ length: 8 }, (_, i) => 0.5 - 0.1 * i));
  const cond = f32([1, 3, 4], new Float32Array(12).fill(1));
  const settings = { schedule, start: 22, end: 23, guidance: 5, cond };
  for (const prediction of ["epsilon", "v_prediction"]) {
    const rec = await unmodulatedPass(scripted(prediction), x, settings, { taps: [] });
    const want = byHand(x, schedule.sigmas[22], schedule.sigmas[23], 5, prediction === "v_prediction");
    const got = Array.from(rec.xAfter[0].data);
    const close = got.every((g, i) => Math.abs(g - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])));
    assertEquals(close, true, `${prediction}: ${got} vs ${want}`);
  }
  // The two predictions really differ at σ_22 (the test would not notice a missing conversion otherwise).
  const e = await unmodulatedPass(scripted("epsilon"), x, settings, { taps: [] });
  const v = await unmodulatedPass(scripted("v_prediction"), x, settings, { taps: [] });
  assertEquals(e.xAfter[0].data.some((a, i) => Math.abs(a - v.xAfter[0].data[i]) > 1e-3), true);
});
