/**
 * `segment` as a library call: the method on one video without GT — a folder of frames (or a folder of clip
 * folders), or a video file decoded with ffmpeg. Labels are K-Means cluster ids (single-video mode). Returns the
 * label map of every frame at its original size; writes palette PNGs, an overlay GIF and a legend only when
 * `outDir` is given. `deno task segment` is this call plus argument parsing.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { loadConfig } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { registeredStages, registerStages } from "../dag/registry.ts";
import { Runner, type RunSummary } from "../dag/runner.ts";
import { Progress, type TextSink } from "../dag/progress.ts";
import { datasetSpecFromConfig, loadDataset } from "../data/dataset.ts";
import { fullPalette } from "../report/labels_png.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkWritableDir } from "../cli/args.ts";
import { decodeVideo, isVideo, VIDEO_EXTS } from "../data/video.ts";
import { checkAgainstData } from "../data/preflight.ts";
import { writeWhole } from "../report/output_dir.ts";
import { writeClipOutputs } from "./segment_outputs.ts";
import type { ShardSpec } from "../dag/shard.ts";
import { runShard, type ShardRun } from "../cluster/shard_cli.ts";

/** The config `segment` starts from unless `config` names another: `configs/segment.yaml`. */
export const SEGMENT_CONFIG: string = path.join(REPO_ROOT, "configs", "segment.yaml");

/** Options of {@link segment}. */
export interface SegmentOptions {
  /** Number of K-Means clusters (default: the config's, 10). */
  k?: number;
  /** Processing size [W, H], multiples of 64 (default: the config's, 448×256). */
  resolution?: [number, number];
  /** A diffusers Stable Diffusion folder to use instead of the embedded model. */
  weights?: string;
  /** Further `KEY=VALUE` overrides of any config key (validated like the YAML). */
  set?: string[];
  /** Base config (default {@link SEGMENT_CONFIG}); its `dataset.root` is replaced by `input`. */
  config?: string;
  /**
   * Cache folder for the stages' artifacts and decoded videos (`videos/`, one folder per video content).
   * Default: a temporary folder, removed before `segment` returns (so nothing is written). Pass a folder (e.g.
   * `results/cache`) to reuse the work of earlier calls and runs.
   * Built ONNX graphs always go to the graph cache (`$VIDSEG_GRAPH_CACHE`, default `results/cache/graphs`).
   */
  cacheDir?: string;
  /**
   * When given, write `labels/<frame>.png` (palette PNGs of the cluster ids), `overlay.gif` and `legend.png`
   * there (one sub-folder per clip when the input holds several clips). The folder is written beside its place
   * and swapped in at the end: it then holds exactly this call's files, and a failed call leaves it as it was.
   */
  outDir?: string;
  /** Accept a video that decodes to fewer frames than its container declares (default: a UserError). */
  allowPartial?: boolean;
  /** Directory `input`, `config`, `weights` and `outDir` are relative to (default: the current directory). */
  cwd?: string;
  /** Where progress lines go (default stderr); `null` = silent. */
  progress?: TextSink | null;
  /**
   * Compute only this shard of the clips into `cacheDir` (shared by the shards) and return no clips: run every
   * shard, then once without `shard` for the label maps (pipeline/dag/shard.ts).
   */
  shard?: ShardSpec;
}

/** One frame's result. */
export interface SegmentedFrame {
  /** Frame name (file stem). */
  name: string;
  /** Label map U8 [H0, W0] at the frame's original size: the K-Means cluster id of every pixel. */
  labels: Tensor<"U8">;
}

/** One clip's result. */
export interface SegmentedClip {
  /** Clip name (the folder's name). */
  name: string;
  /** Every frame in order, each with its label map (views into {@link SegmentedClip.labels}). */
  frames: SegmentedFrame[];
  /** All label maps U8 [N, H0, W0]. */
  labels: Tensor<"U8">;
  /** The cluster ids that can occur (those of the first frame), ascending. */
  labelSet: number[];
  /** Folder the outputs were written to, or null without `outDir`. */
  outDir: string | null;
  /** One line describing what was written (null without `outDir`). */
  written: string | null;
}

/** What {@link segment} returns. */
export interface SegmentResult {
  /** One entry per clip of the input, in name order. */
  clips: SegmentedClip[];
  /** Counts of stage instances run and cached. */
  summary: RunSummary;
  /** Wall time (ms). */
  elapsedMs: number;
  /** With `shard`: what the shard did (and `clips` is empty). */
  shardRun?: ShardRun;
}

/** A silent text sink. */
const NULL_SINK: TextSink = { write: () => {}, isTty: false };

/**
 * Segment one video: every frame gets a label map of K-Means cluster ids, consistent over time.
 *
 * @param input a folder of frames (sorted by name), a folder of clip folders, or a video file
 *   (`.mp4 .mov .avi .mkv .webm .m4v .gif`, needs ffmpeg)
 * @example
 * ```ts
 * const r = await segment("data/swan/images", { k: 4, resolution: [128, 64], progress: null });
 * console.log(r.clips[0].frames.length, r.clips[0].labelSet);
 * ```
 */
export async function segment(input: string, opts: SegmentOptions = {}): Promise<SegmentResult> {
  const cwd = opts.cwd ?? Deno.cwd();
  if (input.trim() === "") {
    throw new UserError(`INPUT: empty path; expected a folder of frames or a video file`);
  }
  const abs = path.resolve(cwd, input);
  const kind = inputKind(abs, input);
  const outDir = opts.outDir === undefined ? null : path.resolve(cwd, opts.outDir);
  // Fail before decoding or computing anything.
  if (outDir !== null) checkWritableDir(outDir, "--out");
  if (opts.cacheDir !== undefined) checkWritableDir(path.resolve(cwd, opts.cacheDir), "--cache");
  const temps: string[] = [];
  const tempDir = (what: string) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `vidseg-${what}-`));
    temps.push(d);
    return d;
  };
  try {
    const cacheDir = opts.cacheDir !== undefined ? path.resolve(cwd, opts.cacheDir) : tempDir("cache");
    const frames = kind === "video"
      ? await decodeVideo(abs, { cacheDir, allowPartial: opts.allowPartial })
      : abs;
    const set = [...(opts.set ?? []), `dataset.root=${frames}`];
    if (opts.k !== undefined) set.push(`kmeans.k=${opts.k}`);
    if (opts.weights !== undefined) {
      set.push(`backbone.weights=${path.resolve(cwd, opts.weights)}`, "backbone.kind=sd");
    }
    if (opts.resolution !== undefined) set.push(`resolution=[${opts.resolution[0]}, ${opts.resolution[1]}]`);
    const config = loadConfig(opts.config ?? SEGMENT_CONFIG, { set, cwd });
    // Everything up to the label maps; no evaluation without GT. Imported here, not at module load: importing
    // the library must not register the method's stages (a program may run `ablate` with stages of its own).
    const { STAGES } = await import("../stages/mod.ts");
    registerStages(...STAGES.filter((s) => s.name !== "evaluate"));
    const stages = registeredStages().filter((s) => s.name !== "evaluate");
    const progress = new Progress(opts.progress === null ? NULL_SINK : opts.progress);
    const runner = new Runner({ cacheDir, root: REPO_ROOT, progress });
    const row = config.rows[0];
    const cfg = row.config as unknown as Record<string, unknown>;
    await checkAgainstData([cfg]); // K and sizes against the frames, before any stage runs
    const clips = loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>));
    const rows = [{ name: row.name, config: cfg, units: clips.map((c) => c.name) }];
    const plan = await runner.plan(stages, rows);
    if (opts.shard) {
      const shardRun = await runShard(runner, plan, opts.shard, rows);
      return { clips: [], summary: shardRun.summary, elapsedMs: shardRun.elapsedMs, shardRun };
    }
    const summary = await runner.execute(plan);
    runner.progress.end();
    const out: SegmentedClip[] = [];
    for (const clip of clips) {
      const slot = plan.rows[0].slots.find((s) => s.stage === "labels" && s.unit === clip.name)!;
      const a = await runner.load(plan, slot.key);
      const labels = a.tensors.labels as Tensor<"U8">; // read now: a temporary cache is removed below
      const names = a.json.frames as string[];
      const [, H, W] = labels.shape;
      out.push({
        name: clip.name,
        frames: names.map((name, i) => ({
          name,
          labels: { dtype: "U8", shape: [H, W], data: labels.data.subarray(i * H * W, (i + 1) * H * W) },
        })),
        labels,
        labelSet: a.json.labels as number[],
        outDir: null,
        written: null,
      });
    }
    if (outDir !== null) {
      // One output folder per clip (a folder of frames is one clip; a folder of clip folders is several),
      // staged beside `outDir` and swapped in whole.
      const palette = fullPalette();
      await writeWhole(outDir, "--out", async (staging) => {
        for (const [i, c] of out.entries()) {
          const sub = out.length === 1 ? "" : c.name;
          c.outDir = path.join(outDir, sub);
          const images = clips[i].frames.map((f) => f.image);
          const names = c.frames.map((f) => f.name);
          c.written = await writeClipOutputs(
            path.join(staging, sub),
            c.labels,
            names,
            c.labelSet,
            images,
            palette,
            c.outDir,
          );
        }
      });
    }
    return { clips: out, summary, elapsedMs: runner.progress.elapsedMs() };
  } finally {
    for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
  }
}

/** What INPUT is: a readable folder of frames or a readable video file (anything else is a UserError). */
function inputKind(abs: string, typed: string): "folder" | "video" {
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new UserError(`${typed}: no such file or folder`);
  }
  const kind = st.isDirectory() ? "folder" : "file";
  try {
    fs.accessSync(abs, st.isDirectory() ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK);
  } catch {
    throw new UserError(
      `${typed}: cannot read this ${kind} (permission denied); expected a readable ${kind}`,
    );
  }
  if (kind === "folder") return "folder";
  if (!isVideo(abs)) {
    throw new UserError(`${typed}: expected a folder of frames or a video file (${VIDEO_EXTS.join(", ")})`);
  }
  return "video";
}
