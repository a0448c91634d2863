/**
 * Shared helpers of the reliability tests: tiny inputs built in temp dirs (a CamVid copy of a few frames, a copy
 * of the conformance SD weights), a tiny config, and running the real CLIs as subprocesses.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DATA, FIXTURES, ROOT } from "../paths.ts";

/** The CamVid clip every test copies frames from. */
export const CLIP = "val_0016E5_07959";
/** The CamVid clips the repo ships. */
export const CAMVID = path.join(DATA, "camvid");
/** The tiny SD-family conformance weights (diffusers layout: unet/, vae/, text_encoder/). */
export const CONFORMANCE = path.join(FIXTURES, "conformance");
/** CLI entry points. */
export const ABLATE = path.join(ROOT, "pipeline", "cli", "ablate.ts");
export const SEGMENT = path.join(ROOT, "pipeline", "cli", "segment.ts");

/** A fresh temp dir. */
export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vidseg-rel-${tag}-`));
}

/** Copy `n` frames (and their labels) of {@link CLIP} into `<dir>/camvid` with a matching clips.json. */
export function makeCamvid(dir: string, n = 3): { root: string; frames: string[] } {
  const root = path.join(dir, "camvid");
  const src = path.join(CAMVID, CLIP);
  const list = JSON.parse(fs.readFileSync(path.join(CAMVID, "clips.json"), "utf8")) as {
    clip: string;
    frames: string[];
  }[];
  const entry = list.find((c) => c.clip === CLIP)!;
  const frames = entry.frames.slice(0, n);
  for (const sub of ["images", "labels"]) {
    fs.mkdirSync(path.join(root, CLIP, sub), { recursive: true });
    for (const f of frames) fs.copyFileSync(path.join(src, sub, f), path.join(root, CLIP, sub, f));
  }
  fs.copyFileSync(path.join(CAMVID, "classes.json"), path.join(root, "classes.json"));
  fs.writeFileSync(path.join(root, "clips.json"), JSON.stringify([{ ...entry, frames }]));
  return { root, frames };
}

/** Copy the conformance weights (unet, vae, text_encoder) into `<dir>/weights`, writable. */
export function makeWeights(dir: string): string {
  const root = path.join(dir, "weights");
  for (const comp of ["unet", "vae", "text_encoder"]) {
    fs.mkdirSync(path.join(root, comp), { recursive: true });
    for (const f of fs.readdirSync(path.join(CONFORMANCE, comp))) {
      const to = path.join(root, comp, f);
      fs.copyFileSync(path.join(CONFORMANCE, comp, f), to);
      fs.chmodSync(to, 0o644);
    }
  }
  return root;
}

/** Options of {@link tinyConfig}. */
export interface TinyConfig {
  weights: string;
  camvid: string;
  maxFrames?: number;
  /** Two rows (all components off / on) instead of one. */
  twoRows?: boolean;
  /** Extra YAML lines appended under `defaults:` (indented by the caller with two spaces). */
  extra?: string;
}

/**
 * A tiny ablation config: conformance model, one clip, 64×64, K=3, a 6-step sampler, optimized schedule. Small
 * enough that a whole run takes seconds on one core.
 */
export function tinyConfig(o: TinyConfig): string {
  return [
    "title: tiny reliability config",
    "defaults:",
    `  backbone: {kind: sd, weights: ${JSON.stringify(o.weights)}}`,
    `  dataset: {kind: camvid, root: ${JSON.stringify(o.camvid)}, clips: [${CLIP}], max_frames: ${
      o.maxFrames ?? 3
    }}`,
    "  resolution: [64, 64]",
    "  sampler: {steps: 6, t_m: 3, t_f: 5, guidance: 5}",
    "  kmeans: {k: 3, n_init: 1}",
    "  batch_size: 3",
    "  schedule: optimized",
    ...(o.extra ? [o.extra] : []),
    "rows:",
    ...(o.twoRows
      ? [
        "  plain:",
        "    modulation: {latent_blending: false, filter_strength: 1.0}",
        "    features: {aggregate: false}",
        "    cbr: {enabled: false}",
        "  full: {}",
      ]
      : ["  full: {}"]),
    "",
  ].join("\n");
}

/** Output of a CLI run. */
export { type CliRun, runCli } from "../cli/run_cli.ts";

/** Environment every CLI run gets: plain progress lines, no colour, a private ONNX graph cache. */
export function cliEnv(graphCache: string, extra: Record<string, string> = {}): Record<string, string> {
  return { CI: "true", NO_COLOR: "1", VIDSEG_GRAPH_CACHE: graphCache, VIDSEG_THREADS: "1", ...extra };
}

/** Every file under `dir` (relative paths, sorted); [] when it does not exist. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Label PNGs + metrics.csv of a results folder: relative path → bytes. */
export function resultBytes(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const f of listFiles(dir)) {
    if (f.endsWith(".png") && f.includes(path.sep) || f === "metrics.csv") {
      out.set(f, new Uint8Array(fs.readFileSync(path.join(dir, f))));
    }
  }
  return out;
}

/** Assert two result maps are byte-identical; returns a description of the first difference, or "". */
export function diffResults(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): string {
  const ka = [...a.keys()].join(","), kb = [...b.keys()].join(",");
  if (ka !== kb) return `file lists differ:\n  ${ka}\n  ${kb}`;
  for (const [k, v] of a) {
    const w = b.get(k)!;
    if (v.length !== w.length || v.some((x, i) => x !== w[i])) return `${k} differs`;
  }
  return "";
}

/** A temp folder with a 3-frame CamVid copy and the two-row tiny config over the conformance UNet; returns both. */
export function twoRowSetup(tag: string): { dir: string; config: string } {
  const dir = tempDir(tag);
  const { root: camvid } = makeCamvid(dir, 3);
  const config = path.join(dir, "tiny.yaml");
  fs.writeFileSync(config, tinyConfig({ weights: CONFORMANCE, camvid, twoRows: true }));
  return { dir, config };
}

/** mulberry32: a small seeded PRNG, so generated cases (kill instants, mutants) are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
