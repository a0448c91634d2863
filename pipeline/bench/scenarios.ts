/**
 * The measured runs of `deno task bench`, each a child process ({@link ./child.ts}) with its own cache:
 * - `full`: every row of the config on a cold cache (the ablate run: per-stage wall time, evaluations, RSS);
 * - `rowsAlone`: each row alone on its own cold cache (their summed wall time vs `full`);
 * - `flip`: the `full` cache with one setting changed (the other modulation schedule; the TAESD decoder): only
 *   the stages reading it rerun;
 * - `rss`: a synthetic clip of N and 10·N frames through the `frames` dataset kind (peak RSS scaling).
 * Children share one graph cache; the one-time graph build time they report is subtracted from their wall.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../config/paths.ts";
import { writeImage } from "../tensor/image.ts";
import { u8 } from "../tensor/tensor.ts";
import { syntheticVideo } from "../data/synthetic.ts";
import type { ChildReport, ChildSpec } from "./child.ts";

const CHILD = path.join(REPO_ROOT, "pipeline", "bench", "child.ts");

/** A finished child run. */
export interface ChildRun {
  label: string;
  report: ChildReport;
  /** Process wall time (spawn to exit), ms. */
  processMs: number;
  /** processMs minus the child's one-time graph builds, ms. */
  wallMs: number;
}

/** Where the bench keeps its temporary caches and the shared graph cache. */
export interface BenchDirs {
  work: string;
  graphs: string;
}

/** Run one child; its progress goes to our stderr. */
export async function runChildProcess(
  dirs: BenchDirs,
  label: string,
  spec: Omit<ChildSpec, "out">,
  log: (msg: string) => void,
): Promise<ChildRun> {
  const out = path.join(dirs.work, `${label}.report.json`);
  const specFile = path.join(dirs.work, `${label}.spec.json`);
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, out }, null, 1));
  log(`bench: ${label} …`);
  const t0 = performance.now();
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, specFile],
    cwd: REPO_ROOT,
    env: { VIDSEG_GRAPH_CACHE: dirs.graphs, CI: "true" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await proc.status;
  const processMs = performance.now() - t0;
  if (!status.success) {
    throw new Error(`bench: child run "${label}" failed (exit ${status.code}); spec ${specFile}`);
  }
  const report = JSON.parse(fs.readFileSync(out, "utf8")) as ChildReport;
  const wallMs = processMs - report.graphBuildMs;
  log(`bench: ${label} done in ${(wallMs / 1000).toFixed(1)} s (${report.summary})`);
  return { label, report, processMs, wallMs };
}

/** A fresh cache directory under the work folder. */
export function freshDir(dirs: BenchDirs, name: string): string {
  const d = path.join(dirs.work, name);
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Write an N-frame synthetic clip (PNG frames, no GT) of H×W into `dir`; returns the folder. */
export async function writeSyntheticFrames(
  dir: string,
  frames: number,
  H: number,
  W: number,
): Promise<string> {
  const v = syntheticVideo({ frames, height: H, width: W, seed: 1 });
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < frames; i++) {
    const one = u8([H, W, 3], v.frames.data.subarray(i * H * W * 3, (i + 1) * H * W * 3));
    await writeImage(path.join(dir, `${String(i).padStart(5, "0")}.png`), one);
  }
  return dir;
}

/** Peak-RSS runs of the config's last row on synthetic clips of `small` and 10·`small` frames. */
export async function rssRuns(
  dirs: BenchDirs,
  base: { config: string; set: string[]; row: string; size: [number, number] },
  small: number,
  log: (msg: string) => void,
): Promise<ChildRun[]> {
  const runs: ChildRun[] = [];
  for (const n of [small, 10 * small]) {
    const root = await writeSyntheticFrames(
      path.join(dirs.work, `synthetic-${n}`),
      n,
      base.size[0],
      base.size[1],
    );
    const set = [
      ...base.set,
      "dataset.kind=frames",
      `dataset.root=${root}`,
      "dataset.clips=all",
      "dataset.max_frames=null",
      // Memory is what is measured here: the optimized schedule and few clusters keep the runs affordable.
      "schedule=optimized",
      "kmeans.k=4",
    ];
    runs.push(
      await runChildProcess(dirs, `rss-${n}`, {
        config: base.config,
        set,
        rows: [base.row],
        cache: freshDir(dirs, `cache-rss-${n}`),
        skipStages: ["evaluate"],
      }, log),
    );
  }
  return runs;
}
