/** Building blocks of the bad-input cases (bad_cases.ts): case types, CLI arguments, damaged files. */
import * as fs from "node:fs";
import * as path from "node:path";
import { DATA } from "../paths.ts";
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
  /** Run where file permissions apply (root without its permission-bypassing capabilities). */
  unprivileged?: boolean;
  /** Needs ffmpeg (a video input): runs in tests/system/video_test.ts. */
  video?: boolean;
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

export const SWAN = path.join(DATA, "swan", "images");

/** A diffusers `model_index.json` naming pipeline class `cls` in the case's weights folder. */
export function writeModelIndex(c: Ctx, cls: string): void {
  fs.writeFileSync(path.join(c.weights, "model_index.json"), JSON.stringify({ _class_name: cls }));
}

/** Write the tiny config (with optional extra YAML) and return ablate's arguments. */
export function ablateArgs(c: Ctx, extra = "", set: string[] = []): Built {
  fs.writeFileSync(c.config, tinyConfig({ weights: c.weights, camvid: c.camvid, maxFrames: 3, extra }));
  return {
    cli: "ablate",
    args: [c.config, "--cache", c.cache, "--results", c.results, ...set.flatMap((s) => ["--set", s])],
  };
}

/** segment's arguments for a frames folder or video (tiny model and size). */
export function segmentArgs(c: Ctx, input: string): Built {
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

/** A 4-frame 160×96 MP4 of swan frames with its index (moov) first, so a cut file still declares 4 frames. */
export async function makeMp4(c: Ctx, name = "clip.mp4", hflip = false): Promise<string> {
  const frames = fs.mkdtempSync(path.join(c.dir, "mp4-frames-"));
  for (const [i, f] of fs.readdirSync(SWAN).sort().slice(0, 4).entries()) {
    fs.copyFileSync(path.join(SWAN, f), path.join(frames, `${String(i).padStart(5, "0")}.jpg`));
  }
  const file = path.join(c.dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = await new Deno.Command("ffmpeg", {
    args: [
      ...["-v", "error", "-framerate", "4", "-i", path.join(frames, "%05d.jpg")],
      ...[
        "-vf",
        `scale=160:96${hflip ? ",hflip" : ""}`,
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        file,
      ],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`ffmpeg: ${new TextDecoder().decode(r.stderr)}`);
  fs.rmSync(frames, { recursive: true });
  return file;
}

/** A folder of the first n swan JPEGs. */
export function swanFrames(c: Ctx, n = 3): string {
  const dir = path.join(c.dir, "swan");
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(SWAN).sort().slice(0, n)) {
    fs.copyFileSync(path.join(SWAN, f), path.join(dir, f));
  }
  return dir;
}

export const img = (c: Ctx, i: number) => path.join(c.camvid, CLIP, "images", c.frames[i]);
export const gt = (c: Ctx, i: number) => path.join(c.camvid, CLIP, "labels", c.frames[i]);
export const truncate = (file: string, frac: number) => {
  const b = fs.readFileSync(file);
  fs.writeFileSync(file, b.subarray(0, Math.floor(b.length * frac)));
};
/** Overwrite bytes in the middle of a file (keeps its signature, breaks its data). */
export const scramble = (file: string) => {
  const b = new Uint8Array(fs.readFileSync(file));
  for (let i = 64; i < b.length - 16; i += 7) b[i] ^= 0x5a;
  fs.writeFileSync(file, b);
};

/** Rewrite a safetensors file with `change` applied to its tensors. */
export function rewriteSafetensors(file: string, change: (t: Record<string, Tensor>) => void): void {
  const st = readSafetensors(file);
  const rec: Record<string, Tensor> = {};
  for (const k of st.keys()) rec[k] = st.get(k);
  change(rec);
  fs.writeFileSync(file, encodeSafetensors(rec, st.metadata ?? {}));
}

export const UNET_ST = (c: Ctx) => path.join(c.weights, "unet", "unet.safetensors");
export const VAE_ST = (c: Ctx) => path.join(c.weights, "vae", "vae.safetensors");
