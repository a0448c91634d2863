/**
 * `deno task segment INPUT`: the method on any video without GT — a folder of frames, or a video file (decoded
 * with ffmpeg when installed). Labels are K-Means cluster ids (single-video mode). Writes per-frame palette PNGs,
 * an overlay GIF and a legend under `results/segment/<name>/` (or --out), with progress/ETA on stderr, through
 * the same cached stages as `ablate` (a second run of the same input reuses everything).
 * @module
 */
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { fmtDuration } from "../dag/progress.ts";
import { MAX_SIDE } from "../data/preflight.ts";
import { segment as runSegment } from "../api/segment.ts";
import { cacheDirOption, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";
import { shardOption } from "../cluster/shard_cli.ts";

const USAGE =
  "deno task segment [--k K] [--resolution WxH] [--weights DIR] [--out DIR] [--set KEY=VALUE]... [--allow-partial] [--shard I/N] INPUT";
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
  shard: {
    type: "string",
    value: "I/N",
    doc: "compute only shard I of N (0 ≤ I < N) of the clips into the shared cache, write no outputs; " +
      "run every shard, then once without --shard for the outputs",
  },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** The segment command; returns the exit code. */
export async function segment(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS, "INPUT is a folder of frames (sorted by name) or a video file."));
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`expected exactly one INPUT (usage: ${USAGE})`);
  const input = userPath(positionals[0], "INPUT");
  const name = path.basename(input).replace(/\.[^.]+$/, "");
  const outDir = options.out !== undefined
    ? userPath(options.out as string, "--out")
    : path.join(REPO_ROOT, "results", "segment", name);
  // --k, --weights and --resolution are config overrides (validated, and named in messages, like --set).
  const set = [...(options.set as string[])];
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
  const shard = shardOption(options.shard) ?? undefined;
  const r = await runSegment(positionals[0], {
    shard,
    set,
    config: options.config !== undefined ? userPath(options.config as string, "--config") : undefined,
    cacheDir: cacheDirOption(options.cache as string | undefined, REPO_ROOT),
    outDir,
    allowPartial: options["allow-partial"] as boolean,
    cwd: userCwd(),
  });
  if (r.shardRun) {
    if (r.shardRun.stageTable) console.error(r.shardRun.stageTable);
    console.error(`segment: ${r.shardRun.line} (${fmtDuration(r.elapsedMs)})`);
    return 0;
  }
  console.error(`segment: ${r.summary.line} (${fmtDuration(r.elapsedMs)})`);
  for (const c of r.clips) console.log(c.written);
  return 0;
}

if (import.meta.main) await runMain(segment);
