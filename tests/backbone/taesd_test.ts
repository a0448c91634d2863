/** TAESD graphs against tests/fixtures/taesd/reference.safetensors (float64 PyTorch, atol 1e-4). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assertEquals, assertLess, assertRejects } from "../assert.ts";
import { loadVae } from "../../pipeline/backbone/vae/autoencoder.ts";
import { TinyAutoencoder } from "../../pipeline/backbone/vae/taesd.ts";
import { UserError } from "../../pipeline/errors.ts";
import { encodeSafetensors, parseSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { f32, maxAbsDiff, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { DATA, FIXTURES } from "../paths.ts";

const DIR = `${DATA}/models/tiny-ldm/vae`;
const load = (p: string) => parseSafetensors(Deno.readFileSync(p), p);
const ref = load(`${FIXTURES}/taesd/reference.safetensors`);
const R = (k: string) => ref.getF32(k);
const ATOL = 1e-4;

function close(a: Tensor, b: Tensor<"F32">, what: string, report: Record<string, string>): void {
  const d = maxAbsDiff(toF32(a), b);
  report[what] = d.toExponential(2);
  assertLess(d, ATOL, `${what}: max |diff| ${d}`);
}

Deno.test("TAESD (taesd.py layout): latents, decoded images and activations within atol 1e-4", async () => {
  const t0 = performance.now();
  const vae = await TinyAutoencoder.load(DIR, { threads: 1, taps: [0, 1, 3, 5, 7, 9, 12, 13, 17] });
  const tLoad = performance.now() - t0;
  const report: Record<string, string> = {};
  const enc = await vae.runWithTaps("encoder", R("synthetic_image"));
  close(enc.latent, R("synthetic_latent"), "synthetic_latent", report);
  for (const i of [1, 5, 9, 13]) {
    close(enc[`act.${i}`], R(`synthetic_encoder_act.${i}`), `encoder_act.${i}`, report);
  }
  const dec = await vae.runWithTaps("decoder", R("synthetic_latent"));
  close(dec.image, R("synthetic_decoded"), "synthetic_decoded", report);
  for (const i of [0, 3, 7, 12, 17]) {
    close(dec[`act.${i}`], R(`synthetic_decoder_act.${i}`), `decoder_act.${i}`, report);
  }
  const t1 = performance.now();
  close(await vae.encodeRaw(R("photo_image")), R("photo_latent"), "photo_latent", report);
  close(await vae.decodeRaw(R("photo_latent")), R("photo_decoded"), "photo_decoded", report);
  console.log(
    report,
    `load ${tLoad.toFixed(0)} ms, photo 128² enc+dec ${(performance.now() - t1).toFixed(0)} ms`,
  );
  await vae.release();
});

Deno.test("TAESD (diffusers AutoencoderTiny layout, chunked batch) gives the same results", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "taesd-diffusers-"));
  try {
    const all: Record<string, Tensor> = {};
    const enc = load(`${DIR}/encoder.safetensors`), dec = load(`${DIR}/decoder.safetensors`);
    for (const k of enc.keys()) all[`encoder.layers.${k}`] = enc.get(k);
    for (const k of dec.keys()) {
      const [i, ...rest] = k.split(".");
      all[`decoder.layers.${Number(i) - 1}.${rest.join(".")}`] = dec.get(k);
    }
    fs.writeFileSync(path.join(tmp, "diffusion_pytorch_model.safetensors"), encodeSafetensors(all));
    fs.writeFileSync(
      path.join(tmp, "config.json"),
      JSON.stringify({ _class_name: "AutoencoderTiny", scaling_factor: 1.0 }),
    );
    const vae = await TinyAutoencoder.load(tmp, { threads: 1, maxBatch: 1 });
    // batch of 2 identical images through chunks of 1
    const img = R("synthetic_image"), two = new Float32Array(2 * img.data.length);
    two.set(img.data);
    two.set(img.data, img.data.length);
    const lat = await vae.encodeRaw({ dtype: "F32", shape: [2, 3, 64, 64], data: two });
    assertEquals(lat.shape, [2, 4, 8, 8]);
    const n = R("synthetic_latent").data.length;
    const report: Record<string, string> = {};
    close(
      { dtype: "F32", shape: [1, 4, 8, 8], data: lat.data.slice(n) },
      R("synthetic_latent"),
      "latent[1]",
      report,
    );
    close(await vae.decodeRaw(R("synthetic_latent")), R("synthetic_decoded"), "decoded", report);
    await vae.release();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("TAESD: missing or mis-shaped weights are one UserError naming file and key", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "taesd-bad-"));
  try {
    const enc = load(`${DIR}/encoder.safetensors`);
    const part: Record<string, Tensor> = {};
    for (const k of enc.keys()) if (k !== "5.conv.2.bias") part[k] = enc.get(k);
    fs.writeFileSync(path.join(tmp, "encoder.safetensors"), encodeSafetensors(part));
    fs.copyFileSync(`${DIR}/decoder.safetensors`, path.join(tmp, "decoder.safetensors"));
    await assertRejects(
      () => TinyAutoencoder.load(tmp),
      UserError,
      `encoder.safetensors: missing tensor "5.conv.2.bias" (expected shape [64]`,
    );
    part["5.conv.2.bias"] = f32([32]);
    fs.writeFileSync(path.join(tmp, "encoder.safetensors"), encodeSafetensors(part));
    await assertRejects(() => TinyAutoencoder.load(tmp), UserError, `tensor "5.conv.2.bias" has shape [32]`);
    fs.rmSync(path.join(tmp, "decoder.safetensors"));
    await assertRejects(() => TinyAutoencoder.load(tmp), UserError, "no TAESD decoder weights");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("loadVae (tiny): TAESD folder behind the uniform interface, latents unscaled", async () => {
  const vae = await loadVae(DIR, { threads: 1 });
  assertEquals(vae.kind, "tiny");
  const report: Record<string, string> = {};
  close(await vae.encode(R("photo_image")), R("photo_latent"), "encode", report);
  close(await vae.decode(R("photo_latent")), R("photo_decoded"), "decode", report);
  await vae.release();
});
