/**
 * `deno task segment INPUT`: the method on any video without GT — a folder of frames, or a video file (decoded
 * with ffmpeg when installed). Labels are K-Means cluster ids (single-video mode). Writes per-frame palette PNGs,
 * an overlay GIF and a legend under `results/segment/<name>/` (or --out), with progress/ETA on stderr, through
 * the same cached stages as `ablate` (a second run of the same input reuses everything).
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { UserError } from "../errors.ts";
import { loadConfig } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { registeredStages, registerStages } from "../dag/registry.ts";
import type { Artifacts } from "../dag/stage.ts";
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import { Runner } from "../dag/runner.ts";
import { fmtDuration } from "../dag/progress.ts";
import { STAGES } from "../stages/mod.ts";
import { fullPalette, type Rgb, writeLabelMaps } from "../report/labels_png.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { decodeVideo, isVideo, VIDEO_EXTS } from "../data/video.ts";
import { checkAgainstData, MAX_SIDE } from "../data/preflight.ts";
import { writeWhole } from "../report/output_dir.ts";
import {
  cacheDirOption,
  checkWritableDir,
  helpText,
  type OptionSpec,
  parseArgs,
  userCwd,
  userPath,
} from "./args.ts";
import { runMain } from "./main.ts";

const USAGE =
  "deno task segment [--k K] [--resolution WxH] [--weights DIR] [--out DIR] [--set KEY=VALUE]... [--allow-partial] INPUT";
const OPTIONS: Record<string, OptionSpec> = {
  k: { type: "string", value: "K", doc: "number of K-Means clusters (default from configs/segment.yaml)" },
  resolution: {
    type: "string",
    value: "WxH",
    doc: "processing size, multiples of 64 (default: the config's)",
  },
  weights: { type: "string", value: "DIR", doc: "diffusers SD folder (default: the embedded model)" },
  out: { type: "string", value: "DIR", doc: "output folder (default results/segment/<input name>)" },
  set: { type: "list", value: "KEY=VALUE", doc: "override any config key; repeatable" },
  config: { type: "string", value: "FILE", doc: "base config (default configs/segment.yaml)" },
  cache: {
    type: "string",
    value: "DIR",
    doc: "cache directory: stages, decoded videos, built graphs (default $VIDSEG_CACHE or results/cache)",
  },
  "allow-partial": {
    type: "boolean",
    doc: "accept a video that decodes to fewer frames than its container declares",
  },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** What INPUT is: a readable folder of frames or a readable video file (anything else is a UserError). */
function inputKind(input: string, typed: string): "folder" | "video" {
  let st: fs.Stats;
  try {
    st = fs.statSync(input);
  } catch {
    throw new UserError(`${typed}: no such file or folder`);
  }
  const kind = st.isDirectory() ? "folder" : "file";
  try {
    fs.accessSync(input, st.isDirectory() ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK);
  } catch {
    throw new UserError(
      `${typed}: cannot read this ${kind} (permission denied); expected a readable ${kind}`,
    );
  }
  if (kind === "folder") return "folder";
  if (!isVideo(input)) {
    throw new UserError(`${typed}: expected a folder of frames or a video file (${VIDEO_EXTS.join(", ")})`);
  }
  return "video";
}

/** Frame i blended 50/50 with its label colours, as RGB bytes. */
function overlay(frame: Uint8Array, labels: Uint8Array, palette: readonly Rgb[], out: Uint8Array): void {
  for (let i = 0; i < labels.length; i++) {
    const c = palette[labels[i]];
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = (frame[i * 3 + ch] + c[ch]) >> 1;
  }
}

/** A legend PNG: one swatch row per label id. */
async function writeLegend(file: string, labels: readonly number[], palette: readonly Rgb[]): Promise<void> {
  const rowH = 24, W = 160, H = rowH * labels.length;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  labels.forEach((l, i) => {
    const [r, g, b] = palette[l];
    svg.push(`<rect x="4" y="${i * rowH + 4}" width="32" height="${rowH - 8}" fill="rgb(${r},${g},${b})"/>`);
    svg.push(`<text x="44" y="${i * rowH + 17}" font-family="sans-serif" font-size="13">cluster ${l}</text>`);
  });
  svg.push("</svg>");
  await sharp(new TextEncoder().encode(svg.join(""))).png().toFile(file);
}

/** The segment command; returns the exit code. */
export async function segment(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS, "INPUT is a folder of frames (sorted by name) or a video file."));
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`expected exactly one INPUT (usage: ${USAGE})`);
  const input = userPath(positionals[0], "INPUT");
  const kind = inputKind(input, positionals[0]);
  const name = path.basename(input).replace(/\.[^.]+$/, "");
  const outDir = options.out !== undefined
    ? userPath(options.out as string, "--out")
    : path.join(REPO_ROOT, "results", "segment", name);
  const cacheDir = cacheDirOption(options.cache as string | undefined, REPO_ROOT);
  // Fail before decoding or computing anything.
  checkWritableDir(outDir, "--out");
  checkWritableDir(cacheDir, "--cache");
  let frames = input;
  if (kind === "video") {
    frames = await decodeVideo(input, { cacheDir, allowPartial: options["allow-partial"] as boolean });
  }
  const set = [...(options.set as string[]), `dataset.root=${frames}`];
  if (options.k !== undefined) set.push(`kmeans.k=${options.k}`);
  if (options.weights !== undefined) {
    set.push(`backbone.weights=${userPath(options.weights as string, "--weights")}`, "backbone.kind=sd");
  }
  if (options.resolution !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(String(options.resolution));
    if (!m) throw new UserError(`--resolution ${options.resolution}: expected WxH, e.g. 448x256`);
    const [w, h] = [Number(m[1]), Number(m[2])];
    if (![w, h].every((x) => x >= 64 && x <= MAX_SIDE && x % 64 === 0)) {
      throw new UserError(
        `--resolution ${options.resolution}: expected W and H multiples of 64 from 64 to ${MAX_SIDE}`,
      );
    }
    set.push(`resolution=[${w}, ${h}]`);
  }
  const configFile = options.config !== undefined
    ? userPath(options.config as string, "--config")
    : path.join(REPO_ROOT, "configs", "segment.yaml");
  const config = loadConfig(configFile, { set, cwd: userCwd() });
  const row = config.rows[0];
  const cfg = row.config as unknown as Record<string, unknown>;
  await checkAgainstData([cfg]);
  // Everything up to the label maps; no evaluation without GT.
  registerStages(...STAGES.filter((s) => s.name !== "evaluate"));
  const stages = registeredStages().filter((s) => s.name !== "evaluate");
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const plan = await runner.plan(stages, [{
    name: row.name,
    config: cfg,
    units: loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>)).map((c) => c.name),
  }]);
  const summary = await runner.execute(plan);
  runner.progress.end();
  // One output folder per clip (a folder of frames is one clip; a folder of clip folders is several).
  const clips = loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>));
  const palette = fullPalette();
  // Written beside the previous output and swapped in whole: the folder then holds exactly this run's files.
  const lines = await writeWhole(outDir, "--out", async (staging) => {
    const out: string[] = [];
    for (const clip of clips) {
      const slot = plan.rows[0].slots.find((s) => s.stage === "labels" && s.unit === clip.name)!;
      const a = await runner.load(plan, slot.key);
      const sub = clips.length === 1 ? "" : clip.name;
      const images = clip.frames.map((f) => f.image);
      out.push(await writeClipOutputs(path.join(staging, sub), path.join(outDir, sub), a, images, palette));
    }
    return out;
  });
  console.error(`segment: ${summary.line} (${fmtDuration(runner.progress.elapsedMs())})`);
  for (const l of lines) console.log(l);
  return 0;
}

/** Most frames in the overlay GIF preview. */
const MAX_GIF_FRAMES = 240;

/**
 * Palette PNGs, legend and overlay GIF of one clip's labels artifact into `dir`; returns the summary line
 * naming `shown` (where the files will be once the output folder is swapped in).
 */
async function writeClipOutputs(
  dir: string,
  shown: string,
  a: Artifacts,
  images: readonly string[],
  palette: readonly Rgb[],
): Promise<string> {
  const labels = a.tensors.labels as Tensor<"U8">;
  const names = a.json.frames as string[];
  const labelSet = a.json.labels as number[];
  fs.mkdirSync(dir, { recursive: true });
  writeLabelMaps(path.join(dir, "labels"), labels, names, palette);
  await writeLegend(path.join(dir, "legend.png"), labelSet, palette);
  // Overlay GIF at the original size: frames re-read at full resolution. A preview, so a long video contributes
  // at most MAX_GIF_FRAMES evenly spaced frames (the GIF is built in memory).
  const [N, H, W] = labels.shape;
  const step = Math.ceil(N / MAX_GIF_FRAMES);
  const picked = Array.from({ length: Math.ceil(N / step) }, (_, i) => i * step);
  const tall = new Uint8Array(picked.length * H * W * 3);
  for (const [j, f] of picked.entries()) {
    // Decoded as tolerantly as the frames stage did (a frame it accepted must not fail here).
    const raw = await sharp(images[f], { failOn: "truncated" }).removeAlpha().resize(W, H).raw().toBuffer();
    overlay(
      raw,
      labels.data.subarray(f * H * W, (f + 1) * H * W),
      palette,
      tall.subarray(j * H * W * 3, (j + 1) * H * W * 3),
    );
  }
  await sharp(tall, { raw: { width: W, height: picked.length * H, channels: 3, pageHeight: H } })
    .gif({ delay: Array(picked.length).fill(100 * step), loop: 0 })
    .toFile(path.join(dir, "overlay.gif"));
  const every = step > 1 ? ` of every ${step}th frame` : "";
  return `results: ${shown}/labels/*.png (${N} frames, ${labelSet.length} clusters), overlay.gif${every}, legend.png`;
}

if (import.meta.main) await runMain(segment);
