/**
 * The optimized modulation schedule gives the reference schedule's difference maps, and an absent label's
 * difference map is exactly zero in the reference schedule (the reason the optimized one may skip it).
 * Runs the real passes on the tiny conformance UNet/VAE (random weights: numbers are meaningless, the
 * equalities are not). Also: instances that agree on a (frame, mask) share its difference map through the
 * runner's sample cache, with results byte-identical to a cold run.
 */
import { assert, assertEquals } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { invertStage } from "../../pipeline/stages/invert.ts";
import { sdModulateParams } from "./params.ts";
import { finalRows, modulateStage } from "../../pipeline/stages/modulate.ts";
import type { Artifacts, StageContext } from "../../pipeline/dag/stage.ts";
import { i32, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";
import { SampleStore } from "../../pipeline/dag/sample_cache.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import { tempDir } from "../dag/fixtures/util.ts";
import * as path from "node:path";

const ctx: StageContext = { progress() {}, log() {} };
const F = 4, H = 128, W = 128;
/**
 * The coarse maps' grid = the feature grid of the modulated block 7: the VAE's latent (H / 2^(VAE levels − 1))
 * downsampled to up block ⌊7 / (layers_per_block + 1)⌋'s level (configs of the conformance set).
 */
const [gh, gw] = (() => {
  const read = (f: string) => JSON.parse(Deno.readTextFileSync(path.join(FIXTURES, "conformance", f)));
  const vae = read("vae/config.json"), unet = read("unet/config.json");
  const up = Math.floor(7 / (unet.layers_per_block + 1));
  const cell = 2 ** (vae.block_out_channels.length - 1) * 2 ** (unet.block_out_channels.length - 1 - up);
  return [H / cell, W / cell];
})();

const params = (schedule: string) =>
  sdModulateParams({ weights: `${FIXTURES}/conformance`, batch: F, schedule });

function framesArtifact(): Artifacts {
  const frames = u8([F, H, W, 3]);
  for (let f = 0; f < F; f++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = ((f * H + y) * W + x) * 3;
        frames.data[o] = (x * 2 + f * 9) & 255;
        frames.data[o + 1] = (y * 2) & 255;
        frames.data[o + 2] = x > 40 + 8 * f ? 200 : 30;
      }
    }
  }
  return { tensors: { frames }, json: { size0: [H, W] } };
}

/** Coarse maps: label 3 on the left half, 5 on the right; label 9 only in frame 0's top-left cell. */
function coarseArtifact(): Artifacts {
  const coarse = i32([1, F, gh, gw]);
  for (let f = 0; f < F; f++) {
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        coarse.data[(f * gh + y) * gw + x] = x < gw / 2 ? 3 : 5;
      }
    }
  }
  coarse.data[0] = 9;
  return { tensors: { coarse_batches: coarse }, json: { labels: [3, 5, 9] } };
}

Deno.test("modulate: optimized schedule = reference schedule; absent labels give zero maps", async () => {
  const frames = framesArtifact();
  const invert = await invertStage.run({ frames }, params("reference"), ctx);
  const inputs = { frames, invert, knn: coarseArtifact() };
  const ref = await modulateStage.run(inputs, params("reference"), ctx);
  const opt = await modulateStage.run(inputs, params("optimized"), ctx);
  const a = ref.tensors.diff as Tensor<"U8">, b = opt.tensors.diff as Tensor<"U8">;
  assertEquals(a.shape, [F, 3, H, W]);
  // Label 9 (index 2) is absent from frames 1..3: the reference's full re-denoising gives exactly zero there.
  const plane = H * W;
  for (let f = 1; f < F; f++) {
    const d = a.data.subarray((f * 3 + 2) * plane, (f * 3 + 3) * plane);
    assertEquals(d.reduce((s, v) => s + v, 0), 0, `frame ${f} label 9`);
  }
  // Present labels do respond to the modulation.
  const present = a.data.subarray(0, plane).reduce((s, v) => s + v, 0);
  assert(present > 0, "modulating label 3 on frame 0 changed nothing");
  let equal = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] === b.data[i]) equal++;
  // Batch composition differs between the schedules, so ONNX kernels may round differently; demand near-identity.
  assert(equal / a.data.length > 0.999, `only ${(100 * equal / a.data.length).toFixed(3)}% of pixels equal`);
});

Deno.test("modulate: each frame's maps are streamed out by the last batch that covers it", () => {
  const r = (start: number, end: number) => ({ start, end });
  assertEquals(finalRows([r(0, 14), r(14, 28)]), [[0, 14], [14, 28]]);
  // An overlapping last batch (§6.4) rewrites the overlap: the earlier batch only emits what precedes it.
  assertEquals(finalRows([r(0, 14), r(6, 20)]), [[0, 6], [6, 20]]);
  // A repeated batch (reference rerun, §13.14): the repeat owns every row.
  assertEquals(finalRows([r(0, 14), r(14, 28), r(14, 28)]), [[0, 14], [14, 14], [14, 28]]);
  assertEquals(finalRows([r(0, 1), r(1, 2), r(2, 3)]), [[0, 1], [1, 2], [2, 3]]);
});

Deno.test("modulate: instances that agree on a (frame, mask) share its sample; results equal a cold run", async () => {
  const frames = framesArtifact();
  const p = params("optimized");
  const invert = await invertStage.run({ frames }, p, ctx);
  const knnA = coarseArtifact();
  // Row "B" differs from "A" in one cell of frame 2 (label 3 → 5): two of its nine (frame, label) masks change.
  const knnB = coarseArtifact();
  (knnB.tensors.coarse_batches as Tensor<"I32">).data[(2 * gh + 3) * gw + 1] = 5;
  const cache = tempDir("shared-samples");
  const samples = new SampleStore(cache, path.join(cache, ".tmp")).scope("modulate", modulateStage.version);
  const inRunner = (invertKey: string): StageContext => ({
    ...ctx,
    samples,
    upstreamKeys: { frames: "frames-key", invert: invertKey, knn: "differs-per-row" },
  });
  const unetSamples = () =>
    Object.entries(evaluations.snapshot()).filter(([k]) => k.startsWith("unet")).reduce(
      (a, [, v]) => a + v.samples,
      0,
    );
  const diffOf = (a: Artifacts) => a.tensors.diff.data as Uint8Array;

  evaluations.reset();
  const coldB = await modulateStage.run({ frames, invert, knn: knnB }, p, ctx); // no sharing
  const coldWork = unetSamples();
  const a = await modulateStage.run({ frames, invert, knn: knnA }, p, inRunner("inv-1"));
  assertEquals({ ...samples.stats }, { hits: 0, misses: 9, stored: 9, corrupt: 0 });

  evaluations.reset();
  const b = await modulateStage.run({ frames, invert, knn: knnB }, p, inRunner("inv-1"));
  assertEquals({ ...samples.stats }, { hits: 7, misses: 11, stored: 11, corrupt: 0 });
  // Byte-identical to computing B alone, with 2 of 9 pairs modulated (the unmodulated pass is the same).
  assert(diffOf(b).every((v, i) => v === diffOf(coldB)[i]), "shared samples changed row B's difference maps");
  const unmodulated = coldWork - 9 * modulatedPerPair(), shared = unetSamples();
  assertEquals(shared, unmodulated + 2 * modulatedPerPair());

  // Everything shared: no UNet evaluation at all; other upstream keys share nothing.
  evaluations.reset();
  const again = await modulateStage.run({ frames, invert, knn: knnA }, p, inRunner("inv-1"));
  assertEquals(unetSamples(), 0);
  assert(diffOf(again).every((v, i) => v === diffOf(a)[i]));
  await modulateStage.run({ frames, invert, knn: knnA }, p, inRunner("inv-2"));
  assertEquals(samples.stats.hits, 7 + 9, "an item was shared across different inverted latents");
});

/** UNet samples per (frame, label) pair: 2 signs × 2 CFG rows × 3 steps (t_m = 22 of 25). */
function modulatedPerPair(): number {
  return 2 * 2 * 3;
}
