/**
 * `backbone.kind: svd` through the stages (frames → invert → features → kmeans → cbr → knn → modulate → labels)
 * on a tiny SVD folder built in a temp dir: the conformance-svd UNet (tests/fixtures/conformance-svd, checked against
 * diffusers/sgm in tests/backbone/svd_pipeline_test.ts), plus a random 4-level temporal VAE (factor 8, so the
 * feature grid is H/16 × W/16 as with real SVD) and a random tiny CLIP image encoder, written here. Random
 * weights: the numbers are meaningless, the structure is not. Checks shapes, byte-identical reruns, that the
 * SVD pass equals the conformance-matched sampler (`svdEpsModel` + `sampleEuler`), that injecting the stored
 * temporal q/k with zero masks reproduces the unmodulated pass, that an empty mask gives a zero difference map,
 * and that λ = 0 gives all-zero maps.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertGreater, assertLess, assertRejects } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import type { Artifacts, Stage, StageContext } from "../../pipeline/dag/stage.ts";
import { schemaDefaults } from "../../pipeline/config/schema.ts";
import { syntheticVideo } from "../../pipeline/data/synthetic.ts";
import { gtAtGrid } from "../../pipeline/data/dataset.ts";
import { invertStage } from "../../pipeline/stages/invert.ts";
import { featuresStage } from "../../pipeline/stages/features.ts";
import { modulateStage } from "../../pipeline/stages/modulate.ts";
import { labelsStage } from "../../pipeline/stages/labels.ts";
import { cbrStage } from "../../pipeline/stages/cbr.ts";
import { kmeansStage } from "../../pipeline/stages/kmeans.ts";
import { knnStage } from "../../pipeline/stages/knn.ts";
import { type BackboneParams, releaseModels } from "../../pipeline/backbone/backbone.ts";
import { svdConditioning, svdUNetOf } from "../../pipeline/backbone/svd/models.ts";
import {
  svdModulatedPasses,
  svdUnmodulatedPass,
  SvdVariantRunner,
} from "../../pipeline/backbone/svd/passes.ts";
import { SVD_INJECT_POSITIONS, svdTap } from "../../pipeline/backbone/svd/backbone.ts";
import { parseTemporalVaeConfig, temporalVaeSpec } from "../../pipeline/backbone/vae/temporal.ts";
import { clipVisionSpec, parseClipVisionConfig } from "../../pipeline/backbone/clip/vision.ts";
import { RandomWeights } from "../../pipeline/backbone/weights/weight_map.ts";
import { edmSchedule } from "../../pipeline/backbone/sampler/schedule.ts";
import { addNoise, gaussianNoise } from "../../pipeline/backbone/sampler/noise.ts";
import { linearFrameScales } from "../../pipeline/backbone/sampler/cfg.ts";
import { sampleEuler } from "../../pipeline/backbone/sampler/euler.ts";
import { svdEpsModel } from "../../pipeline/backbone/sampler/svd.ts";
import { encodeSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { i32, maxAbs, maxAbsDiff, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";
import { UserError } from "../../pipeline/errors.ts";

const CONF = path.join(FIXTURES, "conformance-svd");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-svd-stages-"));
globalThis.addEventListener("unload", () => fs.rmSync(TMP, { recursive: true, force: true }));
Deno.env.set("VIDSEG_GRAPH_CACHE", path.join(TMP, "graphs"));
const ctx: StageContext = { progress() {}, log() {} };
const F = 14, H = 64, W = 128;
/** The conformance UNet's config: context width, and the feature grid of positions 6..8 (up block 2). */
const UNET = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
const FEATURE_LEVEL = Math.floor(6 / (UNET.layers_per_block + 1));
/** Pixels per feature cell: the VAE built here (×8) times the UNet's downsampling at the feature level. */
const CELL = 8 * 2 ** (UNET.block_out_channels.length - 1 - FEATURE_LEVEL);
/** Feature channels: the width of the up block holding positions 6..8 (up blocks run the widths reversed). */
const FEATURE_CH = [...UNET.block_out_channels].reverse()[FEATURE_LEVEL];

/** Every key of `spec` from the project's deterministic random weights, as a safetensors file. */
function writeRandom(file: string, spec: Map<string, readonly number[]>, seed: number): void {
  const w = new RandomWeights(spec, seed);
  const rec: Record<string, Tensor> = {};
  for (const k of spec.keys()) rec[k] = w.take(k);
  fs.writeFileSync(file, encodeSafetensors(rec));
}

/** The tiny SVD pipeline folder: model_index.json, unet/ (conformance), vae/ and image_encoder/ (random). */
function buildModel(): string {
  const root = path.join(TMP, "svd");
  fs.mkdirSync(path.join(root, "vae"), { recursive: true });
  fs.mkdirSync(path.join(root, "image_encoder"));
  fs.writeFileSync(
    path.join(root, "model_index.json"),
    JSON.stringify({ _class_name: "StableVideoDiffusionPipeline" }),
  );
  fs.symlinkSync(path.join(CONF, "unet"), path.join(root, "unet"));
  const vae = {
    _class_name: "AutoencoderKLTemporalDecoder",
    block_out_channels: [32, 32, 32, 32],
    down_block_types: Array(4).fill("DownEncoderBlock2D"),
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    layers_per_block: 1,
    scaling_factor: 0.18215,
  };
  const vaeCfg = path.join(root, "vae", "config.json");
  fs.writeFileSync(vaeCfg, JSON.stringify(vae));
  const vc = parseTemporalVaeConfig({ path: vaeCfg, json: vae });
  writeRandom(path.join(root, "vae", "diffusion_pytorch_model.safetensors"), temporalVaeSpec(vc), 5);
  const clip = {
    architectures: ["CLIPVisionModelWithProjection"],
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    image_size: 16,
    patch_size: 8,
    projection_dim: UNET.cross_attention_dim,
    hidden_act: "gelu",
  };
  const clipCfg = path.join(root, "image_encoder", "config.json");
  fs.writeFileSync(clipCfg, JSON.stringify(clip));
  const cc = parseClipVisionConfig({ path: clipCfg, json: clip });
  writeRandom(path.join(root, "image_encoder", "model.safetensors"), clipVisionSpec(cc), 7);
  return root;
}
const MODEL = buildModel();
const BACKBONE: BackboneParams = { kind: "svd", weights: MODEL, provider: "cpu", dtype: "fp32" };

/**
 * The SVD settings of the method (docs/method.md §1.2, §8) over the schema defaults, K = 3; `t_m` 17 as the paper
 * (8 UNet steps) or later for cheaper checks of properties that do not depend on it.
 */
function config(over: { lambda?: number; schedule?: string; t_m?: number } = {}): Record<string, unknown> {
  const c = schemaDefaults() as Record<string, Record<string, unknown>>;
  c.backbone = { ...BACKBONE };
  c.sampler = { steps: 25, t_m: over.t_m ?? 17, t_f: 24, guidance: 2.5 };
  c.features = { blocks: [6, 7, 8], aggregate: true, block: 8 };
  Object.assign(c.kmeans, { k: 3, n_init: 2 });
  Object.assign(c.modulation, {
    lambda: over.lambda ?? 50,
    block: 8,
    attn: "self",
    blend_until_end: true,
    difference_mode: "float_l2",
  });
  // 14 frames = one batch; the reference would rerun it as the "last" batch (§6.4), which changes nothing.
  return { ...c, batch_size: F, dedupe_last_batch: true, schedule: over.schedule ?? "reference" };
}

/** A stage's params as the runner passes them (dotted keys it declares). */
function paramsOf(
  stage: Stage<Record<string, unknown>>,
  c: Record<string, unknown>,
): Record<string, unknown> {
  const get = (p: string) => p.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c);
  return Object.fromEntries(stage.params.map((p) => [p, structuredClone(get(p))]));
}

/** What the frames stage gives for a 14-frame synthetic clip (GT at the feature grid H/CELL × W/CELL). */
function framesArtifact(): Artifacts {
  const v = syntheticVideo({ frames: F, height: H, width: W });
  const gt0 = u8([H, W], v.gt.data.slice(0, H * W));
  return {
    tensors: { frames: v.frames, gt_grid: gtAtGrid(gt0, H / CELL, W / CELL) },
    json: {
      frames: Array.from({ length: F }, (_, i) => `${i}`),
      size0: [H, W],
      size: [H, W],
      palette: v.palette.map((c) => [...c]),
      classes: v.classes.map((c) => ({ id: c.id, name: c.name })),
    },
  };
}

type S = Stage<Record<string, unknown>>;

/** Same shape and identical values. */
function sameBytes(a: Tensor, b: Tensor): boolean {
  return a.shape.join() === b.shape.join() && a.data.every((v, i) => v === b.data[i]);
}
async function pipeline(c: Record<string, unknown>) {
  const frames = framesArtifact();
  const run = (s: S, inputs: Record<string, Artifacts>) => s.run(inputs, paramsOf(s, c), ctx);
  const invert = await run(invertStage, { frames });
  const features = await run(featuresStage, { frames, invert });
  const kmeans = await run(kmeansStage as S, { features, frames });
  const cbr = await run(cbrStage as S, { features });
  const knn = await run(knnStage as S, { features, kmeans, cbr });
  const modulate = await run(modulateStage, { frames, invert, knn });
  const labels = await run(labelsStage, { frames, knn, modulate });
  return { frames, invert, features, knn, modulate, labels };
}

Deno.test("svd stages: frames → … → labels on a tiny SVD (t_m 17): shapes, labels, modulation responds", async () => {
  const t0 = performance.now();
  const a = await pipeline(config());
  const tA = performance.now() - t0;
  assertEquals(a.invert.tensors.z0.shape, [F, 4, H / 8, W / 8]);
  assertEquals(a.invert.tensors.cond_noise.shape, [1, 3, H, W]);
  for (const i of [6, 7, 8]) {
    assertEquals(a.features.tensors[`q${i}`].shape, [F, (H / CELL) * (W / CELL), FEATURE_CH]);
  }
  assertEquals(a.features.json.grid, [H / CELL, W / CELL]);
  const labelSet = a.knn.json.labels as number[];
  assert(labelSet.length >= 2, `label set ${labelSet}`);
  const L = labelSet.length, plane = H * W, tokens = (H / CELL) * (W / CELL);
  const diff = a.modulate.tensors.diff as Tensor<"U8">;
  assertEquals(diff.shape, [F, L, H, W]);
  assertEquals(a.labels.tensors.labels.shape, [F, H, W]);
  const out = a.labels.tensors.labels.data as Uint8Array;
  assert(out.every((v) => labelSet.includes(v)), "labels outside the label set");
  // Every (frame, label) with a non-empty mask responds to the modulation.
  const coarse = a.knn.tensors.coarse_batches.data as Int32Array;
  for (let f = 0; f < F; f++) {
    for (const [l, label] of labelSet.entries()) {
      if (!coarse.subarray(f * tokens, (f + 1) * tokens).includes(label)) continue;
      const sum = diff.data.subarray((f * L + l) * plane, (f * L + l + 1) * plane).reduce((s, v) => s + v, 0);
      assertGreater(sum, 0, `frame ${f} label ${label}: modulation changed nothing`);
    }
  }
  console.log(`labels ${labelSet}; one pipeline run ${(tA / 1000).toFixed(1)} s`);
});

/** Coarse maps of one batch: label 1 everywhere except frame 0's top-left cell, which is label 9. */
function coarseArtifact(): Artifacts {
  const [gh, gw] = [H / CELL, W / CELL];
  const coarse = i32([1, F, gh, gw]).data.fill(1);
  coarse[0] = 9;
  return {
    tensors: { coarse_batches: i32([1, F, gh, gw], coarse), coarse: i32([F, gh, gw], coarse) },
    json: { labels: [1, 9] },
  };
}

Deno.test("svd modulate: empty mask → zero map; rerun byte-identical (maps and labels); λ = 0 → zero maps", async () => {
  const c = config({ t_m: 21 });
  const frames = framesArtifact();
  const invert = await invertStage.run({ frames }, paramsOf(invertStage, c), ctx);
  const inputs = { frames, invert, knn: coarseArtifact() };
  const plane = H * W;
  const d = (await modulateStage.run(inputs, paramsOf(modulateStage, c), ctx)).tensors.diff as Tensor<"U8">;
  assertEquals(d.shape, [F, 2, H, W]);
  const sum = (f: number, l: number) =>
    d.data.subarray((f * 2 + l) * plane, (f * 2 + l + 1) * plane).reduce((s, v) => s + v, 0);
  // Label 9 is only in frame 0: the other frames' masks are empty, and blending to the last step restores their
  // unmodulated latents exactly (even though temporal attention spreads the modulation across frames).
  assertGreater(sum(0, 1), 0, "frame 0 label 9 unchanged");
  for (let f = 1; f < F; f++) assertEquals(sum(f, 1), 0, `frame ${f}: empty mask, non-zero map`);
  for (let f = 0; f < F; f++) assertGreater(sum(f, 0), 0, `frame ${f} label 1 unchanged`);
  // A rerun with every model reloaded gives the same bytes, through the labels stage too.
  releaseModels();
  const again = await modulateStage.run(inputs, paramsOf(modulateStage, c), ctx);
  assert(sameBytes(again.tensors.diff, d), "difference maps differ between runs");
  const labelsOf = (modulate: Artifacts) =>
    labelsStage.run({ frames, knn: inputs.knn, modulate }, paramsOf(labelsStage, c), ctx);
  const [la, lb] = [
    await labelsOf({ tensors: { diff: d }, json: { labels: [1, 9] } }),
    await labelsOf(again),
  ];
  assert(sameBytes(la.tensors.labels, lb.tensors.labels), "labels differ between runs");
  const c0 = config({ t_m: 21, lambda: 0, schedule: "optimized" });
  const zero = await modulateStage.run(inputs, paramsOf(modulateStage, c0), ctx);
  assert(zero.tensors.diff.data.every((v) => v === 0), "λ = 0 gave non-zero difference maps");
});

Deno.test("svd passes: unmodulated pass = svdEpsModel + sampleEuler; injection with empty masks = unmodulated", async () => {
  const frames = framesArtifact().tensors.frames as Tensor<"U8">;
  const cond = await svdConditioning(BACKBONE, frames, gaussianNoise(9, [1, 3, H, W]));
  assertEquals(cond.latent.shape, [1, 4, H / 8, W / 8]);
  assertEquals(cond.embedding.shape, [1, 1, 8]);
  const s = edmSchedule(25), start = 21;
  const settings = { schedule: s, start, end: 25, frameScales: linearFrameScales(F, 1, 2.5), cond };
  const z0 = gaussianNoise(3, [F, 4, H / 8, W / 8]);
  const x = addNoise(z0, s.sigmas[start], gaussianNoise(4, z0.shape));
  const names = SVD_INJECT_POSITIONS.flatMap((
    i,
  ) => [svdTap(i, "temporal.attn1_q"), svdTap(i, "temporal.attn1_k")]);
  const runner = new SvdVariantRunner(BACKBONE, F, 8, SVD_INJECT_POSITIONS);
  const rec = await svdUnmodulatedPass(runner, x, settings, { taps: names });
  // Reference: the sampler path matched against sgm's trajectories, with the plain UNet.
  const plain = await svdUNetOf(BACKBONE, { taps: [] }, F);
  const ref = await sampleEuler(
    svdEpsModel(async (input) => (await plain.run(input)).v!, cond, linearFrameScales(F, 1, 2.5)),
    x,
    s,
    { startIndex: start },
  );
  const final = rec.xAfter[rec.xAfter.length - 1];
  assertLess(maxAbsDiff(final, ref), 1e-4 * Math.max(1, maxAbs(ref)), "unmodulated pass vs sampleEuler");
  // Two samples with empty masks, no blending: modulation is zero and the injected q/k are the pass's own, so
  // each sample reproduces the unmodulated latent (a wrong [uncond; cond] layout of the injected tensors would not).
  const samples = [{ masks: Array(F).fill(null), sign: 1 }, { masks: Array(F).fill(null), sign: -1 }];
  const m = {
    lambda: 50,
    tokens: (H / CELL) * (W / CELL),
    injectNames: names,
    blendEnd: -1,
    grid: [H / CELL, W / CELL] as [number, number],
  };
  const both = await svdModulatedPasses(runner, x, rec, samples, settings, m);
  const n = final.data.length;
  for (let k = 0; k < 2; k++) {
    const one = { dtype: "F32" as const, shape: final.shape, data: both.data.subarray(k * n, (k + 1) * n) };
    assertLess(maxAbsDiff(one, final), 1e-4 * Math.max(1, maxAbs(final)), `sample ${k} vs unmodulated`);
  }
});

Deno.test("svd stages: an SD folder given as backbone.kind svd is one UserError line", async () => {
  const sdLike = path.join(TMP, "sd-like");
  fs.mkdirSync(sdLike, { recursive: true });
  fs.writeFileSync(
    path.join(sdLike, "model_index.json"),
    JSON.stringify({ _class_name: "StableDiffusionPipeline" }),
  );
  const frames = framesArtifact();
  const c = config();
  (c.backbone as BackboneParams).weights = sdLike;
  await assertRejects(
    () => invertStage.run({ frames }, paramsOf(invertStage, c), ctx),
    UserError,
    `${path.join(sdLike, "model_index.json")}: _class_name "StableDiffusionPipeline" is a Stable Diffusion`,
  );
});
