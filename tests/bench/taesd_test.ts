/**
 * `modulation.decoder: taesd` with a KL-VAE model (the conformance SD-family model): the modulated latents are
 * decoded by the shipped TAESD instead of the model's KL decoder, giving difference maps and labels of the
 * same shape (the encode side still uses the KL VAE). With random conformance weights the two decoders disagree
 * on the images, so the maps must differ; what is checked is that the path works end to end and is really used.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { invertStage } from "../../pipeline/stages/invert.ts";
import { sdModulateParams } from "../stages/params.ts";
import { modulateClip } from "../../pipeline/stages/modulate.ts";
import { labelsStage } from "../../pipeline/stages/labels.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import type { Artifacts, StageContext } from "../../pipeline/dag/stage.ts";
import { i32, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";

const CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-taesd-graphs-"));
globalThis.addEventListener("unload", () => fs.rmSync(CACHE, { recursive: true, force: true }));
Deno.env.set("VIDSEG_GRAPH_CACHE", CACHE);
const ctx: StageContext = { progress() {}, log() {} };
const F = 2, H = 64, W = 64, g = 4;

Deno.test("decoder taesd on a KL-VAE model: TAESD decodes the modulated latents", async () => {
  const frames = u8([F, H, W, 3]);
  for (let i = 0; i < frames.data.length; i++) frames.data[i] = (i * 37 + (i >> 7) * 11) & 255;
  const coarse = i32([F, g, g]);
  for (let i = 0; i < coarse.data.length; i++) coarse.data[i] = (i % g) < 2 ? 1 : 2;
  const knn: Artifacts = {
    tensors: { coarse, coarse_batches: { ...coarse, shape: [1, F, g, g] } },
    json: { labels: [1, 2] },
  };
  const fr: Artifacts = {
    tensors: { frames },
    json: { size0: [H, W], size: [H, W], frames: ["a", "b"], palette: [] },
  };
  const p = (decoder: string): Record<string, unknown> =>
    sdModulateParams({ weights: `${FIXTURES}/conformance`, batch: F, dedupe: true, decoder });
  const invert = await invertStage.run({ frames: fr }, p("vae"), ctx);
  const opt = { groupSamples: 64, microBatch: 28, reusePrefix: true, skipRepeats: true };
  evaluations.reset();
  const kl = await modulateClip({ frames: fr, invert, knn }, p("vae"), ctx, opt);
  const tiny = await modulateClip({ frames: fr, invert, knn }, p("taesd"), ctx, opt);
  const snap = evaluations.snapshot();
  // 2 frames × 2 labels × 2 signs modulated samples, one decode each, per decoder.
  assertEquals(snap["vae.decode"].samples, 8);
  assertEquals(snap["taesd.decode"].samples, 8);
  const a = kl.tensors.diff as Tensor<"U8">, b = tiny.tensors.diff as Tensor<"U8">;
  assertEquals(b.shape, a.shape);
  assert(b.data.some((v) => v > 0), "TAESD difference maps are all zero");
  let same = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] === b.data[i]) same++;
  assert(same < a.data.length, "TAESD and KL decoders gave identical maps (taesd not used?)");
  const labels = await labelsStage.run({ frames: fr, knn, modulate: tiny }, p("taesd"), ctx);
  assertEquals((labels.tensors.labels as Tensor<"U8">).shape, [F, H, W]);
  assertGreater(new Set((labels.tensors.labels as Tensor<"U8">).data).size, 0);
});
