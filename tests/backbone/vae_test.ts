/** AutoencoderKL graphs against tests/fixtures/conformance/vae_vectors.safetensors (diffusers 0.30.3). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { loadVae } from "../../pipeline/backbone/vae/autoencoder.ts";
import { AutoencoderKL, posteriorFromMoments } from "../../pipeline/backbone/vae/kl.ts";
import { UserError } from "../../pipeline/errors.ts";
import { encodeSafetensors, parseSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { f32, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { FIXTURES } from "../paths.ts";
import { closeTo } from "./conformance_io.ts";

const VAE = `${FIXTURES}/conformance/vae`;
const load = (p: string) => parseSafetensors(Deno.readFileSync(p), p);
const ref = load(`${FIXTURES}/conformance/vae_vectors.safetensors`);
const R = (k: string) => ref.getF32(k);

/** README rule: max |diff| ≤ 1e-4·max(1, max|ref|) per tensor. */
const close = (a: Tensor, name: string, report: Record<string, string>, b = R(name)) =>
  closeTo(a, b, name, report);

Deno.test("AutoencoderKL matches every tensor of vae_vectors.safetensors", async () => {
  const t0 = performance.now();
  const vae = await AutoencoderKL.load(VAE, { threads: 1, taps: true });
  const tLoad = performance.now() - t0;
  const report: Record<string, string> = {};
  const seen = new Set(["input.image", "decoder.input_latent", "encoder.sample_noise"]);
  const check = (a: Tensor, name: string) => {
    close(a, name, report);
    seen.add(name);
  };
  const enc = await vae.encoder.run({ image: R("input.image") });
  check(enc.moments, "encoder.moments");
  for (const k of Object.keys(enc)) if (k.startsWith("debug.")) check(enc[k], k);
  const post = posteriorFromMoments(toF32(enc.moments));
  check(post.mean, "encoder.posterior_mean");
  check(post.logvar, "encoder.posterior_logvar");
  check(post.std, "encoder.posterior_std");
  const noise = R("encoder.sample_noise");
  check(
    f32(post.mean.shape, post.mean.data.map((m, i) => m + post.std.data[i] * noise.data[i])),
    "encoder.posterior_sample",
  );
  const dec = await vae.decoder.run({ latent: R("decoder.input_latent") });
  check(dec.image, "decoder.output");
  for (const k of Object.keys(dec)) if (k.startsWith("debug.")) check(dec[k], k);
  check(await vae.decodeRaw(post.mean), "recon.output");
  assertEquals([...seen].sort(), ref.keys().sort(), "every stored tensor is checked");
  console.log(report, `load ${tLoad.toFixed(0)} ms`);
  await vae.release();
});

/** A temp copy of the conformance VAE with its weights transformed by `edit`. */
function withEditedWeights(edit: (all: Record<string, Tensor>) => void): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vae-"));
  const src = load(`${VAE}/vae.safetensors`);
  const all: Record<string, Tensor> = {};
  for (const k of src.keys()) all[k] = src.get(k);
  edit(all);
  fs.writeFileSync(path.join(tmp, "diffusion_pytorch_model.safetensors"), encodeSafetensors(all));
  fs.copyFileSync(`${VAE}/config.json`, path.join(tmp, "config.json"));
  return tmp;
}

Deno.test("legacy attention names (query/key/value/proj_attn) and conv-shaped [C,C,1,1] weights load", async () => {
  const names: Record<string, string> = {
    to_q: "query",
    to_k: "key",
    to_v: "value",
    "to_out.0": "proj_attn",
  };
  const tmp = withEditedWeights((all) => {
    for (const k of Object.keys(all)) {
      const m = /^(.*attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(k);
      if (!m) continue;
      const t = all[k];
      delete all[k];
      // decoder: legacy names with conv-shaped weights; encoder: legacy names only
      const convShaped = k.startsWith("decoder.") && m[3] === "weight";
      all[`${m[1]}.${names[m[2]]}.${m[3]}`] = convShaped ? { ...t, shape: [...t.shape, 1, 1] } as Tensor : t;
    }
  });
  try {
    const vae = await AutoencoderKL.load(tmp, { threads: 1, maxBatch: 1 });
    const report: Record<string, string> = {};
    close(await vae.encodeMean(R("input.image")), "encoder.posterior_mean", report);
    close(await vae.decodeRaw(R("decoder.input_latent")), "decoder.output", report);
    await vae.release();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

/** The set's VAE config. */
const config = JSON.parse(fs.readFileSync(`${VAE}/config.json`, "utf8"));

Deno.test("bad VAE weights or config are one UserError line naming file and key", async () => {
  const weights = load(`${VAE}/vae.safetensors`);
  const victim = weights.keys().filter((k) => /^decoder\.up_blocks\.\d+\.resnets\.\d+\.conv2\.bias$/.test(k))
    .sort()
    .at(-1)!;
  const missing = withEditedWeights((all) => delete all[victim]);
  const shaped = withEditedWeights((all) => (all["quant_conv.weight"] = f32([8, 8, 3, 3])));
  try {
    const e = await assertRejects(
      () => AutoencoderKL.load(missing),
      UserError,
      `missing tensor "${victim}" (expected shape [${weights.get(victim).shape.join(", ")}]`,
    );
    assert(!e.message.includes("\n"), "one line");
    await assertRejects(
      () => AutoencoderKL.load(shaped),
      UserError,
      'tensor "quant_conv.weight" has shape [8, 8, 3, 3] but',
    );
    const cfg = config, first = cfg.block_out_channels[0] as number;
    let groups = 2;
    while (first % groups === 0) groups++; // the smallest group count the first level's width refuses
    fs.writeFileSync(path.join(shaped, "config.json"), JSON.stringify({ ...cfg, norm_num_groups: groups }));
    await assertRejects(
      () => AutoencoderKL.load(shaped),
      UserError,
      `config.json: block_out_channels entry ${first} is not divisible by norm_num_groups ${groups}`,
    );
    fs.rmSync(path.join(shaped, "diffusion_pytorch_model.safetensors"));
    fs.writeFileSync(path.join(shaped, "config.json"), JSON.stringify(cfg));
    fs.writeFileSync(path.join(shaped, "diffusion_pytorch_model.bin"), new Uint8Array([0x50, 0x4b, 3, 4]));
    await assertRejects(
      () => AutoencoderKL.load(shaped),
      UserError,
      "only pickled weights (diffusion_pytorch_model.bin)",
    );
  } finally {
    fs.rmSync(missing, { recursive: true, force: true });
    fs.rmSync(shaped, { recursive: true, force: true });
  }
});

Deno.test("loadVae (kl): images in [0,1] ↔ latents scaled by the config's scaling_factor, posterior sample on request", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "model-"));
  fs.symlinkSync(VAE, path.join(tmp, "vae"));
  try {
    const vae = await loadVae(tmp, { threads: 1 });
    assertEquals(vae.kind, "kl");
    const report: Record<string, string> = {};
    const img01 = f32(R("input.image").shape, R("input.image").data.map((v) => (v + 1) / 2));
    const s = config.scaling_factor as number,
      sc = (t: Tensor<"F32">, a: number, b = 0) => f32(t.shape, t.data.map((v) => a * v + b));
    close(await vae.encode(img01), "encoder.posterior_mean", report, sc(R("encoder.posterior_mean"), s));
    const sample = await vae.encode(img01, { posteriorNoise: R("encoder.sample_noise") });
    close(sample, "encoder.posterior_sample", report, sc(R("encoder.posterior_sample"), s));
    close(
      await vae.decode(sc(R("decoder.input_latent"), s)),
      "decoder.output",
      report,
      sc(R("decoder.output"), 0.5, 0.5),
    );
    await vae.release();
    const cfg = JSON.parse(fs.readFileSync(`${VAE}/config.json`, "utf8"));
    fs.rmSync(path.join(tmp, "vae"));
    fs.mkdirSync(path.join(tmp, "vae"));
    fs.writeFileSync(
      path.join(tmp, "vae", "config.json"),
      JSON.stringify({ ...cfg, _class_name: "AutoencoderKLTemporalDecoder" }),
    );
    await assertRejects(
      () => loadVae(tmp),
      UserError,
      '"_class_name" is "AutoencoderKLTemporalDecoder"; supported: AutoencoderKL, AutoencoderTiny',
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
