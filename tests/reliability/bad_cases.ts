/** The bad-input corpus's cases (run by bad_inputs_test.ts): how each damaged input is built and what its error must say. */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { DATA } from "../shared.ts";
import { encodeSafetensors, readSafetensors } from "../../pipeline/tensor/safetensors.ts";
import type { Tensor } from "../../pipeline/tensor/tensor.ts";
import { CLIP, tinyConfig } from "./helpers.ts";

/** What one case builds: the CLI to run and its arguments, plus where results and the cache go. */
export interface Built {
  cli: "ablate" | "segment";
  args: string[];
  env?: Record<string, string>;
}

/** One corpus case. */
export interface Case {
  name: string;
  /** Build the damaged input in `dir` (a fresh copy of camvid + weights exists in dir/camvid, dir/weights). */
  build(c: Ctx): Built | Promise<Built>;
  /** Phrases the error line must contain (case-sensitive), e.g. the file name and the expected form. */
  phrases: (c: Ctx) => string[];
  /** Stage names whose cache entries may legitimately exist (stages that finished before the failure). */
  cachedOk?: string[];
  /** Files under the results folder the case itself planted (relative paths; not results). */
  planted?: string[];
}

/** Paths of one case. */
export interface Ctx {
  dir: string;
  camvid: string;
  frames: string[];
  weights: string;
  cache: string;
  results: string;
  config: string;
}

const SWAN = path.join(DATA, "swan", "images");

/** A diffusers `model_index.json` naming pipeline class `cls` in the case's weights folder. */
function writeModelIndex(c: Ctx, cls: string): void {
  fs.writeFileSync(path.join(c.weights, "model_index.json"), JSON.stringify({ _class_name: cls }));
}

/** Write the tiny config (with optional extra YAML) and return ablate's arguments. */
function ablateArgs(c: Ctx, extra = "", set: string[] = []): Built {
  fs.writeFileSync(c.config, tinyConfig({ weights: c.weights, camvid: c.camvid, maxFrames: 3, extra }));
  return {
    cli: "ablate",
    args: [c.config, "--cache", c.cache, "--results", c.results, ...set.flatMap((s) => ["--set", s])],
  };
}

/** segment's arguments for a frames folder or video (tiny model and size). */
function segmentArgs(c: Ctx, input: string): Built {
  return {
    cli: "segment",
    args: [
      input,
      ...["--weights", c.weights, "--resolution", "64x64", "--k", "3"],
      ...["--out", path.join(c.results, "segment"), "--cache", c.cache],
      ...["sampler.steps=6", "sampler.t_m=3", "sampler.t_f=5", "kmeans.n_init=1", "dataset.max_frames=3"]
        .flatMap((s) => ["--set", s]),
    ],
  };
}

/** A folder of the first n swan JPEGs. */
function swanFrames(c: Ctx, n = 3): string {
  const dir = path.join(c.dir, "swan");
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(SWAN).sort().slice(0, n)) {
    fs.copyFileSync(path.join(SWAN, f), path.join(dir, f));
  }
  return dir;
}

const img = (c: Ctx, i: number) => path.join(c.camvid, CLIP, "images", c.frames[i]);
const gt = (c: Ctx, i: number) => path.join(c.camvid, CLIP, "labels", c.frames[i]);
const truncate = (file: string, frac: number) => {
  const b = fs.readFileSync(file);
  fs.writeFileSync(file, b.subarray(0, Math.floor(b.length * frac)));
};
/** Overwrite bytes in the middle of a file (keeps its signature, breaks its data). */
const scramble = (file: string) => {
  const b = new Uint8Array(fs.readFileSync(file));
  for (let i = 64; i < b.length - 16; i += 7) b[i] ^= 0x5a;
  fs.writeFileSync(file, b);
};

/** Rewrite a safetensors file with `change` applied to its tensors. */
function rewriteSafetensors(file: string, change: (t: Record<string, Tensor>) => void): void {
  const st = readSafetensors(file);
  const rec: Record<string, Tensor> = {};
  for (const k of st.keys()) rec[k] = st.get(k);
  change(rec);
  fs.writeFileSync(file, encodeSafetensors(rec, st.metadata ?? {}));
}

const UNET_ST = (c: Ctx) => path.join(c.weights, "unet", "unet.safetensors");
const VAE_ST = (c: Ctx) => path.join(c.weights, "vae", "vae.safetensors");

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
    name: "results folder blocked (a file where a row's folder goes)",
    build: (c) => {
      fs.mkdirSync(path.join(c.results, "tiny"), { recursive: true });
      fs.writeFileSync(path.join(c.results, "tiny", "full"), "in the way");
      return ablateArgs(c);
    },
    phrases: (
      c,
    ) => ["--results", path.join(c.results, "tiny", "full"), "is a file", "expected a writable folder"],
    // Checked before anything is computed.
    cachedOk: [],
    planted: ["tiny/full"],
  },
  {
    name: "cache dir is a file",
    build: (c) => {
      fs.writeFileSync(c.cache, "not a folder");
      return ablateArgs(c);
    },
    phrases: (c) => [`cache ${c.cache}`, "EEXIST", "expected a writable folder"],
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
];
