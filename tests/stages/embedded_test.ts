/**
 * The embedded default model ships in the repo and loads through the same code path as real SD 2.1: the
 * diffusers folder, its UNet config, TAESD as the VAE and the learned empty-prompt embedding. A short run of
 * the whole method on one real CamVid clip produces label maps and finite metrics.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { UNet } from "../../pipeline/backbone/sd/unet.ts";
import { loadVae } from "../../pipeline/backbone/vae/autoencoder.ts";
import { emptyPromptEmbedding } from "../../pipeline/backbone/clip/prompt_embedding.ts";
import { f32 } from "../../pipeline/tensor/tensor.ts";

const MODEL = path.join(ROOT, "data", "models", "tiny-ldm");

Deno.test("embedded model: diffusers folder with UNet, TAESD and the learned empty-prompt embedding", async () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(MODEL, "unet", "config.json"), "utf8"));
  const cond = await emptyPromptEmbedding(MODEL);
  assertEquals(cond.shape, [1, 77, cfg.cross_attention_dim]);
  const unet = await UNet.load(MODEL, { taps: ["up.pos07.attn1_q"] });
  const x = f32([2, 4, 16, 24], new Float32Array(2 * 4 * 16 * 24).map((_, i) => Math.sin(i)));
  const ctx = f32([2, 77, cfg.cross_attention_dim]);
  ctx.data.set(cond.data, 77 * cfg.cross_attention_dim);
  const out = await unet.run({ sample: x, timestep: 119, context: ctx });
  assertEquals(out.eps!.shape, [2, 4, 16, 24]);
  assertEquals(out.taps["up.pos07.attn1_q"].shape, [2, 8 * 12, cfg.block_out_channels[1]]);
  assert(out.eps!.data.every(Number.isFinite));
  const vae = await loadVae(MODEL);
  assertEquals(vae.kind, "tiny");
  const img = await vae.decode(f32([1, 4, 8, 8]));
  assertEquals(img.shape, [1, 3, 64, 64]);
});

Deno.test("embedded model: ablate runs the whole method on a short real clip", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-embedded-"));
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        path.join(ROOT, "pipeline/cli/ablate.ts"),
        path.join(ROOT, "configs/small.yaml"),
        "--rows",
        "full",
        "--cache",
        path.join(dir, "cache"),
        "--results",
        path.join(dir, "results"),
        "--set",
        "dataset.max_frames=6",
        "--set",
        "batch_size=6",
        "--set",
        "kmeans.k=6",
      ],
      env: { CI: "true" },
      stdout: "piped",
      stderr: "piped",
    });
    const r = await cmd.output();
    const err = new TextDecoder().decode(r.stderr);
    assert(r.success, `ablate failed:\n${err.slice(-2000)}`);
    const csv = fs.readFileSync(path.join(dir, "results", "small", "metrics.csv"), "utf8").trim().split("\n");
    const header = csv[0].split(","), row = csv.find((l) => l.startsWith("full"))!.split(",");
    const miou = Number(row[header.indexOf("mIoU")]);
    assert(miou > 0 && miou <= 100, `mIoU ${miou}`);
    const maps = fs.readdirSync(path.join(dir, "results", "small", "full", "val_0016E5_07959"));
    assertEquals(maps.filter((f) => f.endsWith(".png")).length, 6);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
