/**
 * The SVD VAE (AutoencoderKLTemporalDecoder) against tests/fixtures/conformance-svd `vae_vectors.safetensors`: encoder
 * (moments, posterior mean/logvar, encoder output), temporal decoder with all frames in one window (diffusers
 * num_frames = F, incl. mid-block and conv_out intermediates) and frame by frame (num_frames = 1, as VidSeg
 * decodes), reconstruction; the pipeline-facing scaled interface; one-line errors for the wrong VAE kind.
 * Tolerance (conformance README): max|diff| ≤ 1e-4·max(1, max|ref|) per tensor.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { posteriorFromMoments } from "../../pipeline/backbone/vae/kl.ts";
import { TemporalVae } from "../../pipeline/backbone/vae/temporal.ts";
import { LazySafetensors } from "../../pipeline/backbone/weights/lazy_safetensors.ts";
import { UserError } from "../../pipeline/errors.ts";
import { f32, maxAbs, maxAbsDiff, reshape, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess, assertRejects } from "../assert.ts";
import { FIXTURES } from "../paths.ts";

const CONF = path.join(FIXTURES, "conformance-svd");
/** The set's VAE scaling factor (vae/config.json). */
const SCALING = JSON.parse(fs.readFileSync(path.join(CONF, "vae", "config.json"), "utf8"))
  .scaling_factor as number;
const f = new LazySafetensors(path.join(CONF, "vae_vectors.safetensors"));
const vv: Record<string, Tensor<"F32">> = {};
for (const k of f.headers.keys()) vv[k] = toF32(f.read(k));
f.close();

const worst: Record<string, number> = {};
function close(got: Tensor<"F32"> | undefined, ref: Tensor<"F32">, what: string): void {
  assert(got, `${what}: missing`);
  const d = maxAbsDiff(got, ref);
  assertLess(d, 1e-4 * Math.max(1, maxAbs(ref)), `${what}: max|diff| ${d}`);
  worst[what] = d;
}

Deno.test("temporal VAE matches every tensor of vae_vectors.safetensors", async () => {
  const vae = await TemporalVae.load(CONF, { taps: true, maxBatch: 2 });
  assertEquals(vae.cfg.scalingFactor, SCALING);
  const frames = vv["input.frames"];
  const enc = await vae.encoder.run({ image: frames });
  close(toF32(enc["debug.encoder.out"]), vv["debug.encoder.out"], "debug.encoder.out");
  const moments = await vae.encodeMoments(frames);
  close(moments, vv["encoder.moments"], "encoder.moments");
  const post = posteriorFromMoments(moments);
  close(post.mean, vv["encoder.posterior_mean"], "encoder.posterior_mean");
  close(post.logvar, vv["encoder.posterior_logvar"], "encoder.posterior_logvar");
  close(await vae.encodeMean(frames), vv["encoder.posterior_mean"], "encodeMean");
  // One temporal window holding both frames: intermediates in the [B·F, …] frame layout.
  const z = vv["decoder.input_latent"];
  const dec = await vae.decoder.run({ latent: reshape(z, [1, ...z.shape]) });
  close(
    toF32(dec["debug.decoder.mid_block.out"]),
    vv["debug.decoder.mid_block.out"],
    "debug.decoder.mid_block.out",
  );
  close(toF32(dec["debug.decoder.conv_out"]), vv["debug.decoder.conv_out"], "debug.decoder.conv_out");
  const F = vv["input.frames"].shape[0]; // the clip's frames: decoded as one window (num_frames = F) or one by one
  close(await vae.decodeRaw(z, F), vv["decoder.output_nfF"], "decoder.output_nfF");
  close(await vae.decodeRaw(z, 1), vv["decoder.output_nf1"], "decoder.output_nf1");
  close(await vae.decodeRaw(vv["encoder.posterior_mean"], F), vv["recon.output_nfF"], "recon.output_nfF");
  // The window matters (time_conv_out and the temporal res blocks mix frames): nf1 ≠ nfF.
  assert(
    maxAbsDiff(await vae.decodeRaw(z, 1), await vae.decodeRaw(z, F)) > 0.1,
    "window 1 differs from window F",
  );
  await assertRejects(
    () => vae.decodeRaw(z, F + 1),
    UserError,
    `${F} frames cannot be cut into windows of ${F + 1}`,
  );
  console.log("vae max|diff|", JSON.stringify(worst));
  await vae.release();
});

Deno.test("scaled interface: images in [0,1] ↔ latents·scaling_factor, decoded frame by frame; posterior sample", async () => {
  const vae = await TemporalVae.load(CONF);
  const frames01 = f32(vv["input.frames"].shape, vv["input.frames"].data.map((x) => (x + 1) / 2));
  const lat = await vae.encode(frames01);
  const mean = vv["encoder.posterior_mean"];
  close(lat, f32(mean.shape, mean.data.map((x) => SCALING * x)), "encode (scaled mean)");
  const eps = f32(mean.shape, mean.data.map((_, i) => (i % 7) / 7 - 0.4));
  const sampled = await vae.encode(frames01, { posteriorNoise: eps });
  const lv = vv["encoder.posterior_logvar"];
  close(
    sampled,
    f32(mean.shape, mean.data.map((m, i) => SCALING * (m + Math.exp(0.5 * lv.data[i]) * eps.data[i]))),
    "encode (sample)",
  );
  const z = vv["decoder.input_latent"];
  const img = await vae.decode(f32(z.shape, z.data.map((x) => SCALING * x)));
  const ref = vv["decoder.output_nf1"];
  close(img, f32(ref.shape, ref.data.map((x) => (x + 1) / 2)), "decode (frame by frame, [0,1])");
  await vae.release();
});

Deno.test("an SD VAE where the SVD VAE is expected is one UserError line", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-svdvae-"));
  try {
    fs.mkdirSync(path.join(root, "vae"));
    fs.copyFileSync(
      path.join(FIXTURES, "conformance", "vae", "config.json"),
      path.join(root, "vae", "config.json"),
    );
    await assertRejects(
      () => TemporalVae.load(root),
      UserError,
      `${
        path.join(root, "vae", "config.json")
      }: _class_name "AutoencoderKL" is the VAE of a Stable Diffusion 1.x/2.x pipeline`,
    );
    fs.writeFileSync(
      path.join(root, "model_index.json"),
      JSON.stringify({ _class_name: "StableDiffusionPipeline" }),
    );
    await assertRejects(
      () => TemporalVae.load(root),
      UserError,
      "but backbone.kind svd needs a Stable Video Diffusion",
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
