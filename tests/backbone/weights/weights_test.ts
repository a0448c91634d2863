/**
 * Weight loading: every bad-weights case is ONE UserError line naming the file and key (exact texts),
 * plus shard indexes and fp16-variant selection. Fixtures are built in a temp dir from the conformance UNet.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UNet } from "../../../pipeline/backbone/sd/unet.ts";
import { findWeights } from "../../../pipeline/backbone/weights/diffusers.ts";
import { LazySafetensors } from "../../../pipeline/backbone/weights/lazy_safetensors.ts";
import { UserError } from "../../../pipeline/errors.ts";
import { encodeSafetensors } from "../../../pipeline/tensor/safetensors.ts";
import { f32, type Tensor } from "../../../pipeline/tensor/tensor.ts";
import { assertEquals } from "../../assert.ts";
import { FIXTURES } from "../../paths.ts";

const SRC = path.join(FIXTURES, "conformance", "unet");
const CONFIG = fs.readFileSync(path.join(SRC, "config.json"), "utf8");
/** conv_in of the set's UNet: [block_out_channels[0], in_channels, k, k]. */
const CFG = JSON.parse(CONFIG), C0 = CFG.block_out_channels[0], IN = CFG.in_channels, K = CFG.conv_in_kernel;
const TENSORS: Record<string, Tensor> = (() => {
  const f = new LazySafetensors(path.join(SRC, "unet.safetensors"));
  const out: Record<string, Tensor> = {};
  for (const k of f.headers.keys()) out[k] = f.read(k);
  f.close();
  return out;
})();

/** A pipeline folder <tmp>/unet/{config.json, <file>} with the given tensors; returns the root. */
function fixture(
  tensors: Record<string, Tensor> | Uint8Array,
  opts: { file?: string; config?: string; index?: unknown } = {},
): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-weights-"));
  fs.mkdirSync(path.join(root, "unet"));
  fs.writeFileSync(path.join(root, "unet", "config.json"), opts.config ?? CONFIG);
  const bytes = tensors instanceof Uint8Array ? tensors : encodeSafetensors(tensors, { format: "pt" });
  fs.writeFileSync(path.join(root, "unet", opts.file ?? "diffusion_pytorch_model.safetensors"), bytes);
  return root;
}

/** UNet.load must reject with exactly `message` (one line). */
async function rejects(root: string, message: string): Promise<void> {
  const cacheDir = path.join(root, "cache");
  try {
    await UNet.load(root, { cacheDir, taps: ["debug.conv_in"], truncate: true });
  } catch (e) {
    assertEquals((e as Error).name, UserError.name, `not a UserError: ${(e as Error).stack}`);
    assertEquals((e as Error).message, message);
    assertEquals((e as Error).message.includes("\n"), false);
    return;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  throw new Error(`expected rejection: ${message}`);
}

const W = (root: string) => path.join(root, "unet", "diffusion_pytorch_model.safetensors");
const C = (root: string) => path.join(root, "unet", "config.json");

Deno.test("missing key", async () => {
  const { ["conv_in.bias"]: _drop, ...rest } = TENSORS;
  const root = fixture(rest);
  await rejects(root, `${W(root)}: missing tensor "conv_in.bias" (expected shape [${C0}] from ${C(root)})`);
});

Deno.test("extra key", async () => {
  const root = fixture({ ...TENSORS, "extra.weight": f32([3]) });
  await rejects(
    root,
    `${W(root)}: unexpected tensor "extra.weight" [3] is not part of the model described by ${C(root)}`,
  );
});

Deno.test("wrong shape", async () => {
  const root = fixture({ ...TENSORS, "conv_in.weight": f32([C0, IN, K + 1, K + 1]) });
  await rejects(
    root,
    `${W(root)}: tensor "conv_in.weight" has shape [${C0}, ${IN}, ${K + 1}, ${K + 1}] but ${
      C(root)
    } implies [${C0}, ${IN}, ${K}, ${K}]`,
  );
});

Deno.test("truncated file", async () => {
  const bytes = encodeSafetensors(TENSORS, { format: "pt" });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const dataLen = bytes.length - 8 - hlen;
  const last = Object.keys(TENSORS).sort().at(-1)!; // encodeSafetensors stores keys sorted: the last ends the file
  const root = fixture(bytes.subarray(0, bytes.length - 100));
  await rejects(
    root,
    `${
      W(root)
    }: truncated — tensor "${last}" ends at byte ${dataLen} of the data section but the file has only ${
      dataLen - 100
    }`,
  );
});

Deno.test("pickle file named .safetensors, and a pickle-only folder", async () => {
  const pickle = Uint8Array.of(0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e, 0, 0, 0, 0);
  const root = fixture(pickle);
  await rejects(
    root,
    `${
      W(root)
    }: this is a pickled PyTorch file (.bin/.ckpt/.pt), not safetensors; refusing to unpickle it — convert it to .safetensors first`,
  );
  const root2 = fixture(pickle, { file: "diffusion_pytorch_model.bin" });
  await rejects(
    root2,
    `${
      path.join(root2, "unet", "diffusion_pytorch_model.bin")
    }: pickled PyTorch weights are not loaded (refusing to unpickle); convert them to .safetensors first`,
  );
});

Deno.test("SVD pipeline where SD is expected; unsupported config field", async () => {
  const root = fixture(TENSORS);
  fs.writeFileSync(
    path.join(root, "model_index.json"),
    JSON.stringify({ _class_name: "StableVideoDiffusionPipeline" }),
  );
  await rejects(
    root,
    `${
      path.join(root, "model_index.json")
    }: _class_name "StableVideoDiffusionPipeline" is a Stable Video Diffusion pipeline (StableVideoDiffusionPipeline), but backbone.kind sd needs a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline)`,
  );
  const svdUnet = fixture(TENSORS, {
    config: JSON.stringify({ ...JSON.parse(CONFIG), _class_name: "UNetSpatioTemporalConditionModel" }),
  });
  await rejects(
    svdUnet,
    `${
      C(svdUnet)
    }: _class_name "UNetSpatioTemporalConditionModel" is the UNet of a Stable Video Diffusion pipeline (StableVideoDiffusionPipeline), but backbone.kind sd needs a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline)`,
  );
  const bad = fixture(TENSORS, {
    config: JSON.stringify({ ...JSON.parse(CONFIG), class_embed_type: "timestep" }),
  });
  await rejects(bad, `${C(bad)}: class_embed_type: unsupported value "timestep" (only null is implemented)`);
});

Deno.test("sharded weights load through the index; fp16 variant chosen only on request", async () => {
  const keys = Object.keys(TENSORS).sort();
  const half = Math.floor(keys.length / 2);
  const pick = (ks: string[]) => Object.fromEntries(ks.map((k) => [k, TENSORS[k]]));
  const root = fixture(pick(keys.slice(0, half)), {
    file: "diffusion_pytorch_model-00001-of-00002.safetensors",
  });
  const dir = path.join(root, "unet");
  fs.writeFileSync(
    path.join(dir, "diffusion_pytorch_model-00002-of-00002.safetensors"),
    encodeSafetensors(pick(keys.slice(half))),
  );
  const weightMap = Object.fromEntries(
    keys.map((k, i) => [k, `diffusion_pytorch_model-0000${i < half ? 1 : 2}-of-00002.safetensors`]),
  );
  fs.writeFileSync(
    path.join(dir, "diffusion_pytorch_model.safetensors.index.json"),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  try {
    const u = await UNet.load(root, {
      cacheDir: path.join(root, "cache"),
      taps: ["debug.conv_in"],
      truncate: true,
    });
    assertEquals(u.graph.built, true);
    await u.release();
    const d2 = path.join(root, "v");
    fs.mkdirSync(d2);
    fs.writeFileSync(path.join(d2, "diffusion_pytorch_model.safetensors"), "");
    fs.writeFileSync(path.join(d2, "diffusion_pytorch_model.fp16.safetensors"), "");
    assertEquals(path.basename(findWeights(d2)), "diffusion_pytorch_model.safetensors");
    assertEquals(
      path.basename(findWeights(d2, { variant: "fp16" })),
      "diffusion_pytorch_model.fp16.safetensors",
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
