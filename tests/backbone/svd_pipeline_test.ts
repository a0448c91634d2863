/**
 * The SVD path end to end on the tiny conformance model (tests/fixtures/conformance-svd):
 * - `VScalingWithEDMcNoise` constants and added time ids against sgm (scheduler.safetensors, trajectory inputs);
 * - the short sgm trajectories (from the stored start step, without guidance and with per-frame linear CFG) run with the
 *   real SVD UNet through `svdEpsModel` + `sampleEuler` (trajectory.safetensors: UNet inputs and outputs,
 *   denoised, latents after every step);
 * - a 14-frame run of the method's SVD pass (noise at σ[17], steps 17..24 with per-frame CFG, decode frame by
 *   frame): shapes, determinism, and what the position-8 modulation at step 17 may change (the method's settings;
 *   shapes follow from the set's configs);
 * - one-line errors for SD/SVD folder mix-ups.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UNet } from "../../pipeline/backbone/sd/unet.ts";
import { parseSvdUNetConfig } from "../../pipeline/backbone/svd/config.ts";
import { SvdUNet } from "../../pipeline/backbone/svd/unet.ts";
import { TemporalVae } from "../../pipeline/backbone/vae/temporal.ts";
import { LazySafetensors } from "../../pipeline/backbone/weights/lazy_safetensors.ts";
import { linearFrameScales } from "../../pipeline/backbone/sampler/cfg.ts";
import { sampleEuler } from "../../pipeline/backbone/sampler/euler.ts";
import { addNoise, gaussianNoise } from "../../pipeline/backbone/sampler/noise.ts";
import { edmSchedule } from "../../pipeline/backbone/sampler/schedule.ts";
import {
  augmentConditioningFrame,
  fpsIdFromDiffusersFps,
  svdAddedTimeIds,
  svdDenoised,
  svdEpsModel,
  type SvdNetwork,
  svdUNetSample,
  VIDSEG_SVD_CONDITIONING,
  vScaling,
} from "../../pipeline/backbone/sampler/svd.ts";
import { UserError } from "../../pipeline/errors.ts";
import { f32, maxAbs, maxAbsDiff, reshape, rows, type Tensor } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertGreater, assertLess, assertRejects, assertThrows } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { loadF32Tensors, readF64Tensors, tempGraphCache } from "./conformance_io.ts";

const CONF = path.join(FIXTURES, "conformance-svd");
const CACHE = tempGraphCache("vidseg-svd-pipe-");

/** F32 and F64 tensors of a conformance-svd file, as float64. */
const readF64 = (file: string) => readF64Tensors(path.join(CONF, file));
const loadF32 = (file: string) => loadF32Tensors(path.join(CONF, file));
const worst: Record<string, number> = {};
function close(got: Tensor<"F32">, ref: Tensor<"F32">, what: string, group = what): void {
  const d = maxAbsDiff(got, ref);
  assertLess(d, 1e-4 * Math.max(1, maxAbs(ref)), `${what}: max|diff| ${d}`);
  worst[group] = Math.max(worst[group] ?? 0, d);
}
const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-12));
  return m;
};

/** The set's configs and schedule length (diffusers' files, not the parsed layouts). */
const unetConfig = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
const vaeConfig = JSON.parse(fs.readFileSync(path.join(CONF, "vae", "config.json"), "utf8"));
const STEPS = readF64("scheduler.safetensors").get("sgm64.c_noise")!.data.length;

let plainUNet: Promise<SvdUNet> | undefined;
const plain = () => (plainUNet ??= SvdUNet.load(CONF, { cacheDir: CACHE, variantName: "svd-plain" }));

Deno.test("VScalingWithEDMcNoise constants match sgm float32 and float64; added time ids; fps mapping", () => {
  const sched = readF64("scheduler.safetensors");
  const sig = edmSchedule(STEPS).sigmas;
  const sig32 = sched.get("sgm.sigmas")!.data;
  for (
    const [name, key] of [["cSkip", "c_skip"], ["cOut", "c_out"], ["cIn", "c_in"], [
      "cNoise",
      "c_noise",
    ]] as const
  ) {
    const f64 = Array.from({ length: STEPS }, (_, i) => vScaling(sig[i])[name]);
    const f32v = Array.from({ length: STEPS }, (_, i) => vScaling(sig32[i], { float32: true })[name]);
    const r64 = maxRel(f64, sched.get(`sgm64.${key}`)!.data),
      r32 = maxRel(f32v, sched.get(`sgm.${key}`)!.data);
    assertLess(r64, 1e-6, `${key} float64 rel ${r64}`);
    assertLess(r32, 1e-6, `${key} float32 rel ${r32}`);
    worst[`schedule ${key} (rel f64/f32)`] = Math.max(r64, r32);
  }
  // diffusers' SVD scheduler timesteps are the same c_noise.
  const ts = sched.get("diffusers.timesteps")!.data;
  for (let i = 0; i < STEPS; i++) assertLess(Math.abs(vScaling(sig[i]).cNoise - ts[i]), 2e-6);
  // sgm's order of the added time ids: fps id, motion bucket id, conditioning augmentation.
  const ids = Array.from(loadF32("trajectory.safetensors")["input.added_time_ids"].data);
  assertEquals(ids.length, 3);
  const [fpsId, motionBucketId, condAug] = ids;
  assertEquals(Array.from(svdAddedTimeIds({ fpsId, motionBucketId, condAug })), ids);
  const m = VIDSEG_SVD_CONDITIONING;
  assertEquals(
    Array.from(svdAddedTimeIds()),
    Array.from(Float32Array.of(m.fpsId, m.motionBucketId, m.condAug)),
  );
  assertEquals(VIDSEG_SVD_CONDITIONING.fpsId, 14);
  assertEquals(fpsIdFromDiffusersFps(15), 14);
  assertThrows(() => vScaling(0), RangeError);
});

/** The sgm trajectory with the real UNet: every UNet input/output, denoised and latent within tolerance. */
async function trajectory(prefix: "traj" | "traj_cfg"): Promise<void> {
  const t = loadF32("trajectory.safetensors");
  const s = edmSchedule(STEPS), i0 = t["input.start_step"].data[0];
  const steps = [0, 1, 2, 3, 4, 5, 6, 7].filter((k) => `${prefix}.step${k}.latents` in t).length;
  const [, F, C, h, w] = t["input.z0"].shape;
  const lat = (k: string) => reshape(t[k], [F, C, h, w]);
  const cond = {
    latent: rows(reshape(t["input.cond_latent"], [F, C, h, w]), 0, 1),
    embedding: t["input.encoder_hidden_states"],
  };
  const x0 = addNoise(lat("input.z0"), s.sigmas[i0], lat("input.noise"));
  close(x0, lat(`${prefix}.latents_init`), `${prefix}.latents_init`, "trajectory latents");
  const unet = await plain();
  const network: SvdNetwork = async (input, info) => {
    const k = info.step - i0;
    assertLess(Math.abs(input.timestep[0] - t[`${prefix}.step${k}.timestep`].data[0]), 2e-6);
    if (t[`${prefix}.step${k}.unet_input`]) {
      close(
        input.sample,
        t[`${prefix}.step${k}.unet_input`],
        `${prefix} unet_input`,
        "trajectory UNet input",
      );
    }
    const v = (await unet.run(input)).v!;
    close(v, t[`${prefix}.step${k}.unet_output`], `${prefix}.step${k}.unet_output`, "trajectory UNet output");
    if (prefix === "traj") {
      // D = c_skip·x + c_out·v on the unscaled x (x_in / c_in).
      const x = f32(
        [F, C, h, w],
        input.sample.data.filter((_, j) => Math.floor(j / (h * w)) % (2 * C) < C).map((y) =>
          y / vScaling(info.sigma).cIn
        ),
      );
      close(
        svdDenoised(x, reshape(v, [F, C, h, w]), info.sigma),
        lat(`traj.step${k}.denoised`),
        `traj.step${k}.denoised`,
        "trajectory denoised",
      );
    }
    return v;
  };
  const stored = t["traj_cfg.cfg_scale"].data; // per-frame linear guidance, first to last frame's scale
  const guidance = prefix === "traj_cfg" ? linearFrameScales(F, stored[0], stored[F - 1]) : undefined;
  const final = await sampleEuler(svdEpsModel(network, cond, guidance), x0, s, {
    startIndex: i0,
    endIndex: i0 + steps,
    callback: (i, x) =>
      close(
        x,
        lat(`${prefix}.step${i - i0}.latents`),
        `${prefix}.step${i - i0}.latents`,
        "trajectory latents",
      ),
  });
  close(final, lat(`${prefix}.step${steps - 1}.latents`), `${prefix} final`, "trajectory latents");
}

Deno.test("sgm trajectory from the stored start step without guidance, run with the SVD UNet", () =>
  trajectory("traj"));
Deno.test("sgm trajectory with per-frame linear CFG (stored scales; UNet batch [uncond; cond])", () =>
  trajectory("traj_cfg"));

Deno.test("svdUNetSample lays out [uncond; cond] with the conditioning latent unscaled on channels 4..7", () => {
  const x = f32([2, 4, 1, 2], Float32Array.from({ length: 16 }, (_, i) => i + 1));
  const c = f32([4, 1, 2], Float32Array.from({ length: 8 }, (_, i) => -(i + 1)));
  const s = svdUNetSample(x, c, true);
  assertEquals(s.shape, [2, 2, 8, 1, 2]);
  // video 0 (uncond), frame 1: x of frame 1 then zeros; video 1 (cond), frame 0: x of frame 0 then c.
  assertEquals(Array.from(s.data.subarray(16, 32)), [9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0, 0, 0]);
  assertEquals(Array.from(s.data.subarray(32, 48)), [1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8]);
  assertEquals(svdUNetSample(x, c, false).shape, [1, 2, 8, 1, 2]);
});

/** Synthetic clip [F, 3, H, W] in [0, 1]: a gradient with a square moving right. */
function syntheticClip(F = 14, H = 16, W = 32): Tensor<"F32"> {
  const out = new Float32Array(F * 3 * H * W);
  for (let f = 0; f < F; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inSquare = x >= f && x < f + 8 && y >= 4 && y < 12;
          out[((f * 3 + c) * H + y) * W + x] = inSquare ? (c === 0 ? 0.9 : 0.1) : (x / W + y / H + c) / 4;
        }
      }
    }
  }
  return f32([F, 3, H, W], out);
}

Deno.test("14-frame SVD pass: σ[17] noise, steps 17..24 with per-frame CFG, decode; deterministic; modulation", async () => {
  const F = 14, stepM = 17;
  const vae = await TemporalVae.load(CONF, { maxBatch: F });
  const unet = await plain();
  const modUNet = await SvdUNet.load(CONF, {
    cacheDir: CACHE,
    modulationPosition: 8,
    variantName: "svd-mod8",
  });
  const clip = syntheticClip(F);
  // Scaled latents [F, latent_channels, 16/d, 32/d], d = 2^(VAE levels − 1).
  const d = 2 ** (vaeConfig.block_out_channels.length - 1), lh = 16 / d, lw = 32 / d;
  const z0 = await vae.encode(clip);
  assertEquals(z0.shape, [F, vaeConfig.latent_channels, lh, lw]);
  const frame0 = rows(clip, 0, 1), frame0m11 = f32(frame0.shape, frame0.data.map((v) => 2 * v - 1));
  const aug = augmentConditioningFrame(frame0m11, 0.02, gaussianNoise(2, frame0.shape));
  const cond = {
    latent: await vae.encodeMean(aug), // unscaled, as sgm's conditioner
    embedding: gaussianNoise(3, [1, 1, unet.layout.crossDim]), // (no CLIP image encoder in the conformance set)
  };
  const s = edmSchedule(25);
  const x = addNoise(z0, s.sigmas[stepM], gaussianNoise(1, z0.shape));
  // Position 8 is in up block j = ⌊8 / (layers_per_block + 1)⌋, at the latent grid / 2^(levels − 1 − j).
  const up8 = Math.floor(8 / (unetConfig.layers_per_block + 1));
  const g8 = 2 ** (unetConfig.block_out_channels.length - 1 - up8), tokens8 = (lh / g8) * (lw / g8);
  const run = async (modulation?: Tensor<"F32">) => {
    const network: SvdNetwork = async (input, info) =>
      (info.step === stepM && modulation
        ? await modUNet.run({ ...input, modulation })
        : await unet.run(input)).v!;
    const final = await sampleEuler(svdEpsModel(network, cond, linearFrameScales(F, 1.0, 2.5)), x, s, {
      startIndex: stepM,
    });
    return { final, images: await vae.decode(final) };
  };
  const a = await run(), b = await run();
  assertEquals(a.final.shape, z0.shape);
  assertEquals(a.images.shape, [F, 3, 16, 32]);
  assert(a.images.data.every(Number.isFinite), "finite images");
  assertEquals(maxAbsDiff(a.images, b.images), 0, "two runs are byte-identical");
  // Zero modulation at step 17 reproduces the plain pass exactly.
  const zero = await run(f32([2 * F, tokens8, 1]));
  assertEquals(maxAbsDiff(zero.images, a.images), 0, "zero modulation = plain pass");
  // +λ·mask on frame 5 (both CFG halves, modulate_uc): frame 5 changes; report the spread to other frames.
  const f = 5, lambda = 50, m = new Float32Array(2 * F * tokens8);
  for (const half of [0, 1]) for (let n = 0; n < tokens8 / 2; n++) m[(half * F + f) * tokens8 + n] = lambda;
  const mod = await run(f32([2 * F, tokens8, 1], m));
  const perFrame = Array.from(
    { length: F },
    (_, i) => maxAbsDiff(rows(mod.images, i, i + 1), rows(a.images, i, i + 1)),
  );
  assertGreater(perFrame[f], 1e-3, `frame ${f} unchanged by its mask`);
  // Temporal attention spreads it to the other frames, but the masked frame changes most.
  assertEquals(Math.max(...perFrame), perFrame[f]);
  console.log(
    `decoded change per frame from a λ=50 mask on frame ${f}: ${perFrame.map((d) => d.toFixed(3)).join(" ")}`,
  );
  console.log("trajectory/schedule worst:", JSON.stringify(worst));
  await modUNet.release();
  await unet.release();
  await vae.release();
});

Deno.test("SD/SVD folder mix-ups and bad SVD configs are one UserError line", async () => {
  const sdRoot = path.join(FIXTURES, "conformance");
  await assertRejects(
    () => SvdUNet.load(sdRoot, { cacheDir: CACHE }),
    UserError,
    `${
      path.join(sdRoot, "unet", "config.json")
    }: _class_name "UNet2DConditionModel" is the UNet of a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline), but backbone.kind svd needs a Stable Video Diffusion pipeline (StableVideoDiffusionPipeline)`,
  );
  await assertRejects(
    () => UNet.load(CONF, { cacheDir: CACHE }),
    UserError,
    `${
      path.join(CONF, "unet", "config.json")
    }: _class_name "UNetSpatioTemporalConditionModel" is the UNet of a Stable Video Diffusion pipeline`,
  );
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-svd-root-"));
  try {
    fs.writeFileSync(
      path.join(root, "model_index.json"),
      JSON.stringify({ _class_name: "StableDiffusionPipeline" }),
    );
    await assertRejects(
      () => SvdUNet.load(root),
      UserError,
      `${
        path.join(root, "model_index.json")
      }: _class_name "StableDiffusionPipeline" is a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline), but backbone.kind svd needs`,
    );
    // Weights that do not fit the config: the file and the key in one line.
    fs.writeFileSync(
      path.join(root, "model_index.json"),
      JSON.stringify({ _class_name: "StableVideoDiffusionPipeline" }),
    );
    fs.mkdirSync(path.join(root, "unet"));
    const cfg = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
    fs.writeFileSync(
      path.join(root, "unet", "config.json"),
      JSON.stringify({ ...cfg, addition_time_embed_dim: 4, projection_class_embeddings_input_dim: 12 }),
    );
    // add_embedding.linear_1: [time_embed_dim = 4·block_out_channels[0], projection_class_embeddings_input_dim].
    const [te, proj] = [4 * cfg.block_out_channels[0], cfg.projection_class_embeddings_input_dim];
    const weights = new LazySafetensors(path.join(CONF, "unet", "diffusion_pytorch_model.fp16.safetensors"));
    assertEquals(weights.headers.get("add_embedding.linear_1.weight")?.shape, [te, proj]);
    weights.close();
    fs.symlinkSync(
      path.join(CONF, "unet", "diffusion_pytorch_model.fp16.safetensors"),
      path.join(root, "unet", "diffusion_pytorch_model.fp16.safetensors"),
    );
    await assertRejects(
      () => SvdUNet.load(root),
      UserError,
      `tensor "add_embedding.linear_1.weight" has shape [${te}, ${proj}] but ${
        path.join(root, "unet", "config.json")
      } implies [${te}, 12]`,
    );
    // The first up-path position without a transformer (an UpBlockSpatioTemporal level).
    const plainPos = (cfg.up_block_types as string[]).indexOf("UpBlockSpatioTemporal") *
      (cfg.layers_per_block + 1);
    assert(plainPos >= 0, "an up level without attention");
    await assertRejects(
      () => SvdUNet.load(CONF, { cacheDir: CACHE, modulationPosition: plainPos }),
      UserError,
      `modulation.block: up-path position ${plainPos} has no transformer`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const raw = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
  assertThrows(
    () =>
      parseSvdUNetConfig({
        ...raw,
        up_block_types: ["UpBlockSpatioTemporal", "CrossAttnUpBlock2D", "x", "y"],
      }, "c.json"),
    UserError,
    'c.json: up_block_types: unsupported block "CrossAttnUpBlock2D"',
  );
  const a = raw.addition_time_embed_dim, notMultiple = 3 * a + 1;
  assertThrows(
    () => parseSvdUNetConfig({ ...raw, projection_class_embeddings_input_dim: notMultiple }, "c.json"),
    UserError,
    `c.json: projection_class_embeddings_input_dim: ${notMultiple} is not a multiple of addition_time_embed_dim ${a}`,
  );
  assertThrows(
    () => parseSvdUNetConfig({ ...raw, _class_name: "UNet2DConditionModel" }, "c.json"),
    UserError,
    "c.json: _class_name",
  );
});
