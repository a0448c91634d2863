/**
 * `deno task probe [--config FILE] [--row NAME] [--weights DIR] [--set KEY=VALUE]...`: the feature-quality probe
 * (pipeline/seg/probe.ts) on the config's dataset. Runs only frames → invert → features through the cached DAG
 * (keyed by the weights' content as well, so a re-exported checkpoint is never scored from stale features; a second
 * probe of the same weights computes nothing new), then K-Means with
 * the config's K per clip, majority GT class per cluster, grid mIoU (an upper bound of label assignment) and the
 * temporal stability of the features. The last stdout line is `probe: mIoU X stability Y`.
 * @module
 */
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { loadConfig } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { Runner } from "../dag/runner.ts";
import { FileIdentity } from "../dag/files.ts";
import { fmtDuration } from "../dag/progress.ts";
import { datasetSpecFromConfig, gtAtGrid, loadDataset, readGt } from "../data/dataset.ts";
import type { Stage } from "../dag/stage.ts";
import { framesStage } from "../stages/frames.ts";
import { invertStage } from "../stages/invert.ts";
import { featuresStage } from "../stages/features.ts";
import { aggregatedFeatures } from "../seg/aggregate.ts";
import { framesFromBatches, type ProbeClip, probeFeatures } from "../seg/probe.ts";
import { f32, u8 } from "../tensor/tensor.ts";
import { helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE =
  "deno task probe [--config FILE] [--row NAME] [--weights DIR] [--set KEY=VALUE]... [--cache DIR]";
const OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", value: "FILE", doc: "config (default configs/table2.yaml)" },
  row: { type: "string", value: "NAME", doc: "row whose feature settings are probed (default F)" },
  weights: {
    type: "string",
    value: "DIR",
    doc: "diffusers folder of the embedded model's layout (default: the config's)",
  },
  set: { type: "list", value: "KEY=VALUE", doc: "override a config key; repeatable" },
  cache: { type: "string", value: "DIR", doc: "cache directory (default $VIDSEG_CACHE or results/cache)" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

const fmt = (v: number | null) => (v === null ? "n/a" : v.toFixed(1));

/** The probe command; returns the exit code. */
export async function probe(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS));
    return 0;
  }
  if (positionals.length) throw new UserError(`unexpected argument ${positionals[0]} (usage: ${USAGE})`);
  const set = [...(options.set as string[])];
  if (options.weights) set.push(`backbone.weights=${userPath(options.weights as string)}`);
  const file = userPath(
    (options.config as string | undefined) ?? path.join(REPO_ROOT, "configs", "table2.yaml"),
  );
  const config = loadConfig(file, { set, cwd: userCwd() });
  const rowName = (options.row as string | undefined) ??
    (config.rows.some((r) => r.name === "F") ? "F" : config.rows[0].name);
  const row = config.rows.find((r) => r.name === rowName);
  if (!row) {
    throw new UserError(`--row ${rowName}: ${file} has rows ${config.rows.map((r) => r.name).join(", ")}`);
  }
  const cfg = row.config as unknown as Record<string, unknown>;
  const clips = loadDataset(datasetSpecFromConfig(cfg.dataset as Record<string, unknown>));
  if (!clips.some((c) => c.frames.some((f) => f.gt))) {
    throw new UserError(
      `dataset: ${(cfg.dataset as Record<string, unknown>).root} has no GT; the probe needs labelled clips`,
    );
  }
  const cacheDir = userPath(
    (options.cache as string | undefined) ?? Deno.env.get("VIDSEG_CACHE") ??
      path.join(REPO_ROOT, "results", "cache"),
  );
  // The stages key the backbone by its folder path; checkpoints are re-exported into one folder, so the folder's
  // content hash joins the key here (probe entries are therefore separate from ablate's).
  const weights = (cfg.backbone as Record<string, unknown>).weights;
  const content = typeof weights === "string"
    ? new FileIdentity(path.join(cacheDir, ".filehash")).identify(path.resolve(weights), "probe")
    : null;
  const keyed = (s: Stage<Record<string, unknown>>) => ({
    ...s,
    params: [...s.params, "probe_weights_content"],
  });
  const runner = new Runner({ cacheDir, root: REPO_ROOT });
  const plan = await runner.plan([framesStage, keyed(invertStage), keyed(featuresStage)], [
    { name: row.name, config: { ...cfg, probe_weights_content: content }, units: clips.map((c) => c.name) },
  ]);
  const summary = await runner.execute(plan);
  runner.progress.end();

  const feat = cfg.features as { aggregate: boolean; blocks: number[]; block: number };
  const km = cfg.kmeans as { k: number; n_init: number; max_iter: number; tol: number };
  const probeClips: ProbeClip[] = [];
  for (const clip of clips) {
    const slot = plan.rows[0].slots.find((s) => s.stage === "features" && s.unit === clip.name)!;
    const a = await runner.load(plan, slot.key);
    const [h, w] = a.json.grid as number[];
    const all = aggregatedFeatures(a, feat.aggregate, feat.blocks, feat.block);
    const N = clip.frames.length;
    const perFrame = framesFromBatches(
      all,
      (a.json.batches as [number, number][] | undefined) ?? [[0, N]],
      N,
    );
    // Only annotated frames are scored (neighbours = consecutive annotated frames).
    const keep = clip.frames.map((f, i) => (f.gt ? i : -1)).filter((i) => i >= 0);
    const [, n, d] = perFrame.shape;
    const X = new Float32Array(keep.length * n * d), G = new Uint8Array(keep.length * n);
    keep.forEach((f, j) => {
      X.set(perFrame.data.subarray(f * n * d, (f + 1) * n * d), j * n * d);
      G.set(gtAtGrid(readGt(clip, f)!, h, w).data, j * n);
    });
    probeClips.push({ name: clip.name, features: f32([keep.length, n, d], X), gt: u8([keep.length, n], G) });
  }
  const res = probeFeatures(probeClips, clips[0].classes.map((c) => c.id), {
    k: km.k,
    nInit: km.n_init,
    maxIter: km.max_iter,
    tol: km.tol,
    seed: cfg.seed as number,
  });
  console.error(`probe: ${summary.line} (${fmtDuration(runner.progress.elapsedMs())})`);
  const b = cfg.backbone as { weights?: string };
  console.log(
    `weights ${b.weights ?? "(config)"}, row ${row.name}, K ${km.k}, resolution ${
      JSON.stringify(cfg.resolution)
    }`,
  );
  console.log("clip | mIoU | stability | same-cell cosine");
  for (const c of res.perClip) {
    console.log(`${c.name} | ${fmt(c.mIoU)} | ${fmt(c.stability)} | ${fmt(c.sameCellCosine)}`);
  }
  console.log(
    `probe: mIoU ${fmt(res.mIoU)} stability ${fmt(res.stability)} same-cell-cosine ${
      fmt(res.sameCellCosine)
    }`,
  );
  return 0;
}

if (import.meta.main) await runMain(probe);
