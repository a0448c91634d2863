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
import { registerStages, registeredStages } from "../dag/registry.ts";
import type { Artifacts } from "../dag/stage.ts";
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import { Runner } from "../dag/runner.ts";
import { fmtDuration } from "../dag/progress.ts";
import { STAGES } from "../stages/mod.ts";
import { fullPalette, type Rgb, writeLabelMaps } from "../report/labels_png.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkWritableDir, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";
import { acquireLock } from "../dag/lock.ts";
import { runShard, shardOption, shardPlanText } from "../cluster/shard_cli.ts";

const USAGE =
  "deno task segment [--k K] [--resolution WxH] [--weights DIR] [--out DIR] [--set KEY=VALUE]... [--shard I/N] INPUT";
const OPTIONS: Record<string, OptionSpec> = {
  k: { type: "string", value: "K", doc: "number of K-Means clusters (default from configs/segment.yaml)" },
  resolution: { type: "string", value: "WxH", doc: "processing size, multiples of 64 (default: the config's)" },
  weights: { type: "string", value: "DIR", doc: "diffusers SD folder (default: the embedded model)" },
  out: { type: "string", value: "DIR", doc: "output folder (default results/segment/<input name>)" },
  set: { type: "list", value: "KEY=VALUE", doc: "override any config key; repeatable" },
  config: { type: "string", value: "FILE", doc: "base config (default configs/segment.yaml)" },
  cache: { type: "string", value: "DIR", doc: "cache directory (default $VIDSEG_CACHE or results/cache)" },
  shard: {
    type: "string",
    value: "I/N",
    doc: "compute only shard I of N (0 ≤ I < N) of the clips into the shared cache, write no outputs; " +
      "run every shard, then once without --shard for the outputs",
  },
  plan: { type: "boolean", doc: "print what is cached and what would run (with --shard: the split); compute nothing" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

const VIDEO_EXTS = [".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif"];

/** Decode a video file into PNG frames with ffmpeg (once; reused when the folder is complete). */
async function decodeVideo(file: string, dir: string): Promise<string> {
  const done = path.join(dir, ".complete");
  if (fs.existsSync(done)) return dir;
  // Shards on several hosts may start at once: one decodes, the others wait for it.
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const lock = await acquireLock(`${dir}.lock`);
  try {
    if (fs.existsSync(done)) return dir;
    return await decodeInto(file, dir, done);
  } finally {
    lock.release();
  }
}

async function decodeInto(file: string, dir: string, done: string): Promise<string> {
  let ok = false;
  try {
    const probe = await new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output();
    ok = probe.success;
  } catch { /* not installed */ }
  if (!ok) {
    throw new UserError(`${file}: decoding a video file needs ffmpeg (Debian: apt-get install ffmpeg), or pass a folder of frames`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const r = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-i", file, "-vsync", "0", path.join(dir, "%05d.png")],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new UserError(`${file}: ffmpeg could not decode it (${new TextDecoder().decode(r.stderr).trim().split("\n")[0]})`);
  fs.writeFileSync(done, "");
  return dir;
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
  const svg = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`, `<rect width="100%" height="100%" fill="white"/>`];
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
  const input = userPath(positionals[0]);
  if (!fs.existsSync(input)) throw new UserError(`${positionals[0]}: no such file or folder`);
  const name = path.basename(input).replace(/\.[^.]+$/, "");
  const outDir = userPath((options.out as string | undefined) ?? path.join(REPO_ROOT, "results", "segment", name));
  checkWritableDir(outDir, "--out"); // fail before decoding or computing anything
  let frames = input;
  if (fs.statSync(input).isFile()) {
    if (!VIDEO_EXTS.includes(path.extname(input).toLowerCase())) {
      throw new UserError(`${positionals[0]}: expected a folder of frames or a video file (${VIDEO_EXTS.join(", ")})`);
    }
    frames = await decodeVideo(input, path.join(outDir, "frames"));
  }
  const set = [...(options.set as string[]), `dataset.root=${frames}`];
  if (options.k) set.push(`kmeans.k=${options.k}`);
  if (options.weights) set.push(`backbone.weights=${userPath(options.weights as string)}`, "backbone.kind=sd");
  if (options.resolution) {
    const m = /^(\d+)x(\d+)$/.exec(String(options.resolution));
    if (!m) throw new UserError(`--resolution ${options.resolution}: expected WxH, e.g. 448x256`);
    set.push(`resolution=[${m[1]}, ${m[2]}]`);
  }
  const configFile = (options.config as string | undefined) ?? path.join(REPO_ROOT, "configs", "segment.yaml");
  const config = loadConfig(configFile, { set, cwd: userCwd() });
  // Everything up to the label maps; no evaluation without GT.
  registerStages(...STAGES.filter((s) => s.name !== "evaluate"));
  const stages = registeredStages().filter((s) => s.name !== "evaluate");
  const cacheDir = userPath((options.cache as string | undefined) ?? Deno.env.get("VIDSEG_CACHE") ?? path.join(REPO_ROOT, "results", "cache"));
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const row = config.rows[0];
  const cfg = row.config as unknown as Record<string, unknown>;
  const rows = [{ name: row.name, config: cfg, units: loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>)).map((c) => c.name) }];
  const plan = await runner.plan(stages, rows);
  const shard = shardOption(options.shard);
  if (options.plan) {
    console.log(runner.formatPlan(plan));
    if (shard) console.log(shardPlanText(runner, plan, shard, rows));
    return 0;
  }
  if (shard) {
    await runShard(runner, plan, shard, rows, "segment");
    return 0;
  }
  const summary = await runner.execute(plan);
  runner.progress.end();
  // One output folder per clip (a folder of frames is one clip; a folder of clip folders is several).
  const clips = loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>));
  const palette = fullPalette();
  const lines: string[] = [];
  for (const clip of clips) {
    const slot = plan.rows[0].slots.find((s) => s.stage === "labels" && s.unit === clip.name)!;
    const a = await runner.load(plan, slot.key);
    const dir = clips.length === 1 ? outDir : path.join(outDir, clip.name);
    lines.push(await writeClipOutputs(dir, a, clip.frames.map((f) => f.image), palette));
  }
  console.error(`segment: ${summary.line} (${fmtDuration(runner.progress.elapsedMs())})`);
  for (const l of lines) console.log(l);
  return 0;
}

/** Most frames in the overlay GIF preview. */
const MAX_GIF_FRAMES = 240;

/** Palette PNGs, legend and overlay GIF of one clip's labels artifact; returns the summary line. */
async function writeClipOutputs(dir: string, a: Artifacts, images: readonly string[], palette: readonly Rgb[]): Promise<string> {
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
    const raw = await sharp(images[f]).removeAlpha().resize(W, H).raw().toBuffer();
    overlay(raw, labels.data.subarray(f * H * W, (f + 1) * H * W), palette, tall.subarray(j * H * W * 3, (j + 1) * H * W * 3));
  }
  await sharp(tall, { raw: { width: W, height: picked.length * H, channels: 3, pageHeight: H } })
    .gif({ delay: Array(picked.length).fill(100 * step), loop: 0 })
    .toFile(path.join(dir, "overlay.gif"));
  const every = step > 1 ? ` of every ${step}th frame` : "";
  return `results: ${dir}/labels/*.png (${N} frames, ${labelSet.length} clusters), overlay.gif${every}, legend.png`;
}

if (import.meta.main) await runMain(segment);
