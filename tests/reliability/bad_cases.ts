/** The bad-input corpus's cases (run by bad_inputs_test.ts): how each damaged input is built and what its error must say. */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import type { Tensor } from "../../pipeline/tensor/tensor.ts";
import {
  ablateArgs,
  type Case,
  gt,
  img,
  makeMp4,
  rewriteSafetensors,
  scramble,
  segmentArgs,
  SWAN,
  swanFrames,
  truncate,
  UNET_ST,
  VAE_ST,
  writeModelIndex,
} from "./bad_case_kit.ts";

export { type Case, type Ctx, makeMp4, segmentArgs, swanFrames } from "./bad_case_kit.ts";

export const CASES: Case[] = [
  {
    name: "corrupt PNG frame",
    build: (c) => (scramble(img(c, 1)), ablateArgs(c)),
    phrases: (c) => [img(c, 1), "cannot decode image", "expected a complete PNG/JPEG"],
  },
  {
    name: "truncated PNG frame",
    build: (c) => (truncate(img(c, 2), 0.5), ablateArgs(c)),
    phrases: (c) => [img(c, 2), "cannot decode image", "expected a complete PNG/JPEG"],
  },
  {
    name: "corrupt JPEG frame (segment)",
    build: (c) => {
      const dir = swanFrames(c);
      scramble(path.join(dir, "00001.jpg"));
      return segmentArgs(c, dir);
    },
    phrases: (c) => [path.join(c.dir, "swan", "00001.jpg"), "cannot decode image", "expected a complete"],
  },
  {
    name: "truncated JPEG frame (segment)",
    build: (c) => {
      const dir = swanFrames(c);
      truncate(path.join(dir, "00002.jpg"), 0.6);
      return segmentArgs(c, dir);
    },
    phrases: (c) => [path.join(c.dir, "swan", "00002.jpg"), "premature end", "expected a complete"],
  },
  {
    name: "frames of different sizes in one clip",
    build: async (c) => {
      const small = await sharp(img(c, 1)).resize(240, 180).png().toBuffer();
      fs.writeFileSync(img(c, 1), small);
      return ablateArgs(c);
    },
    phrases: (c) => [img(c, 1), "240×180", "480×360", "all frames of a clip must have one size"],
  },
  {
    name: "GT of a different size than its frame",
    build: async (c) => {
      const small = sharp(gt(c, 0)).resize(240, 180, { kernel: "nearest" }).toColourspace("b-w");
      fs.writeFileSync(gt(c, 0), await small.png().toBuffer());
      return ablateArgs(c);
    },
    phrases: (c) => [gt(c, 0), "GT is 240×180", "480×360", "expected a label PNG of its frame's size"],
  },
  {
    name: "missing GT of a CamVid frame",
    build: (c) => (fs.rmSync(gt(c, 1)), ablateArgs(c)),
    phrases: (c) => [gt(c, 1), "label file of this frame is missing"],
  },
  {
    name: "empty frame folder (segment)",
    build: (c) => {
      const dir = path.join(c.dir, "empty");
      fs.mkdirSync(dir);
      return segmentArgs(c, dir);
    },
    phrases: (c) => [path.join(c.dir, "empty"), "expected image files", "an empty folder"],
  },
  {
    name: "wrong dataset layout (camvid kind on a plain frames folder)",
    build: (c) => {
      const dir = swanFrames(c);
      return ablateArgs(c, "", [`dataset.root=${dir}`]);
    },
    phrases: (c) => [path.join(c.dir, "swan"), "not a CamVid dataset", "classes.json, clips.json"],
  },
  {
    name: "misspelled config key",
    build: (c) => ablateArgs(c, "  kmeens: {k: 3}"),
    phrases: (c) => [c.config, "defaults.kmeens", "unknown key", "did you mean kmeans"],
  },
  {
    name: "sampler.t_m ≥ sampler.steps",
    build: (c) => ablateArgs(c, "", ["sampler.t_m=6", "sampler.t_f=6"]),
    phrases: () => ["sampler.t_m", "expected integer < sampler.steps (6), got 6"],
  },
  {
    name: "sampler.t_f < sampler.t_m",
    build: (c) => ablateArgs(c, "", ["sampler.t_f=2"]),
    phrases: () => ["sampler.t_f", "expected integer ≥ sampler.t_m (3), got 2"],
  },
  {
    name: "kmeans.k < 2",
    build: (c) => ablateArgs(c, "", ["kmeans.k=1"]),
    phrases: () => ["kmeans.k", "expected integer ≥ 2, got 1"],
  },
  {
    name: "batch_size 0",
    build: (c) => ablateArgs(c, "", ["batch_size=0"]),
    phrases: () => ["batch_size", "expected integer ≥ 1, got 0"],
  },
  {
    name: "weights folder missing a file",
    build: (c) => (fs.rmSync(VAE_ST(c)), ablateArgs(c)),
    phrases: (c) => [path.join(c.weights, "vae"), "no .safetensors weights", "expected config.json and"],
    cachedOk: ["frames"],
  },
  {
    name: "safetensors with a wrong shape",
    build: (c) => {
      rewriteSafetensors(UNET_ST(c), (t) => {
        const w = t["conv_in.weight"];
        t["conv_in.weight"] = { ...w, shape: [w.shape[0], w.shape[1] * w.shape[2] * w.shape[3]] } as Tensor;
      });
      return ablateArgs(c);
    },
    phrases: (c) => {
      const u = JSON.parse(fs.readFileSync(path.join(c.weights, "unet", "config.json"), "utf8"));
      const [o, i, k] = [u.block_out_channels[0], u.in_channels, u.conv_in_kernel];
      return [UNET_ST(c), "conv_in.weight", `[${o}, ${i * k * k}]`, `implies [${o}, ${i}, ${k}, ${k}]`];
    },
    cachedOk: ["frames", "invert"], // invert needs only the VAE
  },
  {
    name: "truncated safetensors",
    build: (c) => (truncate(UNET_ST(c), 0.5), ablateArgs(c)),
    phrases: (c) => [UNET_ST(c), "truncated"],
    cachedOk: ["frames", "invert"],
  },
  {
    name: "pickle bytes in a .safetensors file (refused, never unpickled)",
    build: (c) => {
      // A protocol-2 pickle of a dict, as torch.save wrote before the zip format.
      fs.writeFileSync(
        VAE_ST(c),
        new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e, ...new Uint8Array(64)]),
      );
      return ablateArgs(c);
    },
    phrases: (c) => [VAE_ST(c), "pickle", "refusing to unpickle"],
    cachedOk: ["frames"],
  },
  {
    name: "zip .bin weights instead of safetensors (refused)",
    build: (c) => {
      fs.rmSync(VAE_ST(c));
      fs.writeFileSync(
        path.join(c.weights, "vae", "diffusion_pytorch_model.bin"),
        new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new Uint8Array(60)]),
      );
      return ablateArgs(c);
    },
    phrases: (c) => [path.join(c.weights, "vae"), "diffusion_pytorch_model.bin", "pickles are never loaded"],
    cachedOk: ["frames"],
  },
  {
    name: "SVD folder given as backbone.kind sd (model_index.json)",
    build: (c) => (writeModelIndex(c, "StableVideoDiffusionPipeline"), ablateArgs(c)),
    phrases: (c) => [
      path.join(c.weights, "model_index.json"),
      `_class_name "StableVideoDiffusionPipeline"`,
      "backbone.kind sd needs a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline)",
    ],
    cachedOk: ["frames"],
  },
  {
    name: "SD folder given as backbone.kind svd (model_index.json)",
    build: (c) => (
      writeModelIndex(c, "StableDiffusionPipeline"),
        ablateArgs(c, "", ["backbone.kind=svd", "modulation.attn=self", "modulation.block=8"])
    ),
    phrases: (c) => [
      path.join(c.weights, "model_index.json"),
      `_class_name "StableDiffusionPipeline"`,
      "backbone.kind svd needs a Stable Video Diffusion pipeline (StableVideoDiffusionPipeline)",
    ],
    cachedOk: ["frames"],
  },
  {
    name: "VIDSEG_THREADS not a positive integer",
    build: (c) => ({ ...ablateArgs(c), env: { VIDSEG_THREADS: "two" } }),
    phrases: () => ["VIDSEG_THREADS", `"two" is not a positive integer`],
    cachedOk: ["frames"],
  },
  {
    name: "unwritable results dir (a file)",
    build: (c) => {
      fs.writeFileSync(c.results, "not a folder");
      return ablateArgs(c);
    },
    phrases: (c) => ["--results", c.results, "is a file", "expected a writable folder"],
    // The results folder is checked before anything is computed.
    cachedOk: [],
  },
  {
    name: "cache dir is a file",
    build: (c) => {
      fs.writeFileSync(c.cache, "not a folder");
      return ablateArgs(c);
    },
    phrases: (c) => [`--cache ${c.cache}`, "is a file", "expected a writable folder"],
  },
  {
    name: "cache writes fail (disk-full stand-in: <cache>/.tmp is a file)",
    build: (c) => {
      fs.mkdirSync(c.cache);
      fs.writeFileSync(path.join(c.cache, ".tmp"), "blocks every entry write");
      return ablateArgs(c);
    },
    phrases: (
      c,
    ) => [`cache ${c.cache}`, "cannot write the frames entry", path.join(c.cache, ".tmp"), "free space"],
  },
  {
    name: "truncated video (decodes to fewer frames than declared)",
    video: true,
    build: async (c) => {
      const mp4 = await makeMp4(c);
      truncate(mp4, 0.8);
      return segmentArgs(c, mp4);
    },
    phrases: (
      c,
    ) => [path.join(c.dir, "clip.mp4"), "of the 4 frames its container declares", "--allow-partial"],
    cachedOk: [],
  },
  {
    name: "video cut before its first frame",
    video: true,
    build: async (c) => {
      const mp4 = await makeMp4(c);
      truncate(mp4, 0.3);
      return segmentArgs(c, mp4);
    },
    phrases: (c) => [path.join(c.dir, "clip.mp4"), "could not decode any frame", "expected a complete video"],
  },
  {
    name: "random bytes named .mp4",
    video: true,
    build: (c) => {
      const fake = path.join(c.dir, "clip.mp4");
      let x = 12345;
      fs.writeFileSync(
        fake,
        Uint8Array.from({ length: 4096 }, () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24),
      );
      return segmentArgs(c, fake);
    },
    phrases: (c) => [path.join(c.dir, "clip.mp4"), "expected a complete video"],
  },
  {
    name: "kmeans.k above the feature cells of a batch (ablate)",
    build: (c) => ablateArgs(c, "", ["kmeans.k=100"]),
    phrases: () => ["kmeans.k", "100 is more than the 48 feature cells", "3 frame(s) × 4×4 cells at 64×64"],
    cachedOk: [],
  },
  {
    name: "--k above the feature cells of a one-frame clip (segment)",
    build: (c) => {
      const b = segmentArgs(c, swanFrames(c, 1));
      b.args[b.args.indexOf("--k") + 1] = "20";
      return b;
    },
    phrases: () => ["kmeans.k", "20 is more than the 16 feature cells", "expected kmeans.k ≤ 16"],
    cachedOk: [],
  },
  {
    name: "knn.k above the feature cells of a frame",
    build: (c) => ablateArgs(c, "", ["knn.k=17"]),
    phrases: () => ["knn.k", "17 is more than the 16 feature cells of one frame", "expected knn.k ≤ 16"],
    cachedOk: [],
  },
  {
    name: "absurd --resolution (segment)",
    build: (c) => {
      const b = segmentArgs(c, swanFrames(c));
      b.args[b.args.indexOf("--resolution") + 1] = "64x6400000000000000";
      return b;
    },
    phrases: () => ["--resolution 64x6400000000000000", "multiples of 64 from 64 to 8192"],
  },
  {
    name: "absurd resolution in the config",
    build: (c) => ablateArgs(c, "", ["resolution=[64, 6400000000000000]"]),
    phrases: () => ["--set resolution", "multiples of 64 from 64 to 8192"],
  },
  {
    name: "--set with a misspelled group",
    build: (c) => ablateArgs(c, "", ["kmeens.k=3"]),
    phrases: () => ["--set kmeens", "unknown key", "did you mean kmeans?"],
  },
  {
    name: "YAML alias bomb",
    build: (c) => {
      const b = ablateArgs(c);
      const lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x"]'];
      for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array(8).fill(`*a${i - 1}`).join(", ")}]`);
      fs.writeFileSync(c.config, `title: bomb\nbomb:\n  ${lines.join("\n  ")}\n`);
      return b;
    },
    phrases: (c) => [c.config, "YAML aliases expand too far", "expected at most 100 alias uses"],
  },
  {
    name: "empty config file",
    build: (c) => {
      const b = ablateArgs(c);
      fs.writeFileSync(c.config, "# nothing yet\n");
      return b;
    },
    phrases: (c) => [c.config, "the config is empty", "expected a mapping with defaults and rows"],
  },
  {
    name: "empty --out path (segment)",
    build: (c) => {
      const b = segmentArgs(c, swanFrames(c));
      b.args[b.args.indexOf("--out") + 1] = "";
      return b;
    },
    phrases: () => ["--out: empty path", "expected a file or folder name"],
  },
  {
    name: "two frames with one name (00001.jpg and 00001.png)",
    build: async (c) => {
      const dir = swanFrames(c);
      await sharp(path.join(dir, "00001.jpg")).png().toFile(path.join(dir, "00001.png"));
      return segmentArgs(c, dir);
    },
    phrases: (c) => [path.join(c.dir, "swan", "00001.png"), `two frames are named "00001"`],
  },
  {
    name: "unreadable frame",
    unprivileged: true,
    build: (c) => {
      const dir = swanFrames(c);
      fs.chmodSync(path.join(dir, "00001.jpg"), 0o000);
      return segmentArgs(c, dir);
    },
    phrases: (
      c,
    ) => [path.join(c.dir, "swan", "00001.jpg"), "cannot read this frame", "expected readable image"],
  },
  {
    name: "unreadable CamVid frame (ablate)",
    unprivileged: true,
    build: (c) => (fs.chmodSync(img(c, 1), 0o000), ablateArgs(c)),
    phrases: (c) => [img(c, 1), "cannot read"],
  },
  {
    name: "unreadable input folder",
    unprivileged: true,
    build: (c) => {
      const dir = swanFrames(c);
      fs.chmodSync(dir, 0o000);
      return segmentArgs(c, dir);
    },
    phrases: (c) => [path.join(c.dir, "swan"), "cannot read this folder", "expected a readable folder"],
  },
  {
    name: "unreadable clip folder among several",
    unprivileged: true,
    build: (c) => {
      const root = path.join(c.dir, "clips");
      for (const n of ["a", "b"]) {
        fs.mkdirSync(path.join(root, n), { recursive: true });
        for (const f of fs.readdirSync(SWAN).sort().slice(0, 2)) {
          fs.copyFileSync(path.join(SWAN, f), path.join(root, n, f));
        }
      }
      fs.chmodSync(path.join(root, "b"), 0o000);
      return segmentArgs(c, root);
    },
    phrases: (c) => [path.join(c.dir, "clips", "b"), "cannot read this clip folder"],
  },
  {
    name: "unwritable labels folder of a previous output (segment)",
    unprivileged: true,
    build: (c) => {
      const labels = path.join(c.results, "segment", "labels");
      fs.mkdirSync(labels, { recursive: true });
      fs.writeFileSync(path.join(labels, "00000.png"), "previous");
      fs.chmodSync(labels, 0o555);
      return segmentArgs(c, swanFrames(c));
    },
    phrases: (c) => ["--out", path.join(c.results, "segment", "labels"), "is not writable"],
    planted: [path.join("segment", "labels", "00000.png")],
    cachedOk: [],
  },
  {
    name: "unwritable cache folder",
    unprivileged: true,
    build: (c) => {
      fs.mkdirSync(c.cache);
      fs.chmodSync(c.cache, 0o555);
      return ablateArgs(c);
    },
    phrases: (c) => [`--cache ${c.cache}`, "is not writable", "expected a writable folder"],
  },
];
