/**
 * Helpers of the cluster tests: a CamVid copy of several clips of different lengths (so shard costs differ), a
 * tiny two-row config over them, and running the CLIs as child processes.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CAMVID, CONFORMANCE } from "../reliability/helpers.ts";
import { ROOT } from "../paths.ts";

export { cliEnv, diffResults, listFiles, resultBytes, runCli } from "../reliability/helpers.ts";

export const ABLATE = path.join(ROOT, "pipeline", "cli", "ablate.ts");
export const CACHE_CLI = path.join(ROOT, "pipeline", "cli", "cache.ts");
export const SLURM_CLI = path.join(ROOT, "pipeline", "cli", "slurm.ts");

/** A fresh temp dir. */
export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vidseg-cluster-${tag}-`));
}

/** Copy the first `n` frames (images + labels) of each named CamVid clip into `<dir>/camvid`. */
export function makeCamvidClips(dir: string, counts: Record<string, number>): string {
  const root = path.join(dir, "camvid");
  const list = JSON.parse(fs.readFileSync(path.join(CAMVID, "clips.json"), "utf8")) as {
    clip: string;
    frames: string[];
  }[];
  const out = [];
  for (const [clip, n] of Object.entries(counts)) {
    const entry = list.find((c) => c.clip === clip)!;
    const frames = entry.frames.slice(0, n);
    for (const sub of ["images", "labels"]) {
      fs.mkdirSync(path.join(root, clip, sub), { recursive: true });
      for (const f of frames) fs.copyFileSync(path.join(CAMVID, clip, sub, f), path.join(root, clip, sub, f));
    }
    out.push({ ...entry, frames });
  }
  fs.copyFileSync(path.join(CAMVID, "classes.json"), path.join(root, "classes.json"));
  fs.writeFileSync(path.join(root, "clips.json"), JSON.stringify(out));
  return root;
}

/** Clip lengths of the sharded-run tests: three clips of 2, 3 and 4 frames. */
export const CLIPS = { val_0016E5_07959: 4, train_0006R0_f02010: 3, train_0016E5_04350: 2 };

/** A tiny two-row config (conformance SD model, 64×64, K=3, 6 steps) over the clips of `camvid`. */
export function clusterConfig(camvid: string, clips: string[]): string {
  return [
    "title: tiny sharded config",
    "defaults:",
    `  backbone: {kind: sd, weights: ${JSON.stringify(CONFORMANCE)}}`,
    `  dataset: {kind: camvid, root: ${JSON.stringify(camvid)}, clips: [${clips.join(", ")}]}`,
    "  resolution: [64, 64]",
    "  sampler: {steps: 6, t_m: 3, t_f: 5, guidance: 5}",
    "  kmeans: {k: 3, n_init: 1}",
    "  batch_size: 4",
    "  schedule: optimized",
    "rows:",
    "  plain:",
    "    modulation: {latent_blending: false, filter_strength: 1.0}",
    "    features: {aggregate: false}",
    "    cbr: {enabled: false}",
    "  full: {}",
    "",
  ].join("\n");
}

/** A temp folder with the three-clip CamVid copy and the tiny config; returns both. */
export function clusterSetup(tag: string): { dir: string; config: string } {
  const dir = tempDir(tag);
  const camvid = makeCamvidClips(dir, CLIPS);
  const config = path.join(dir, "tiny.yaml");
  fs.writeFileSync(config, clusterConfig(camvid, Object.keys(CLIPS)));
  return { dir, config };
}

/** Every cache entry's manifest digest (stage/key → digest): equal maps mean nothing was rewritten. */
export function manifestDigests(cache: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const stage of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
    const dir = path.join(cache, stage);
    if (stage.startsWith(".") || stage === "samples" || !fs.statSync(dir).isDirectory()) continue;
    for (const key of fs.readdirSync(dir)) {
      const m = path.join(dir, key, "manifest.json");
      if (fs.existsSync(m)) out.set(`${stage}/${key}`, JSON.parse(fs.readFileSync(m, "utf8")).digest);
    }
  }
  return out;
}

/** Number of stage instances a CLI log says it computed ("[k/N] done <stage> …" lines). */
export function computedLines(log: string): string[] {
  return log.split("\n").filter((l) => /^\[\d+\/\d+\] done /.test(l)).map((l) =>
    l.replace(/^\[\d+\/\d+\] done /, "").replace(/ in .*$/, "")
  );
}
