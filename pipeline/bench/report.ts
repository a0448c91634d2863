/**
 * The bench report: the measured runs condensed into `bench.json` (every number, machine-readable) and
 * `bench.md` (the tables for the README's Performance section).
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ChildReport, StageStats } from "./child.ts";
import type { ChildRun } from "./scenarios.ts";
import type { Breakdown } from "./breakdown.ts";
import type { MatmulProbe } from "./matmul.ts";
import { mib } from "./rss.ts";

/** One stage of a run, per frame. */
export interface StageRow {
  stage: string;
  instances: number;
  wallS: number;
  frames: number;
  msPerFrame: number | null;
  peakRssMiB: number | null;
  unetSamplesPerFrame: number | null;
  /** FLOP-weighted UNet evaluations per frame (full-UNet equivalents). */
  unetFullPerFrame: number | null;
  vaeDecodesPerFrame: number | null;
  /** Achieved GFLOP/s of this stage's UNet runs, and as a fraction of the MatMul probe. */
  unetGflops: number | null;
  unetFractionOfMatmul: number | null;
}

/** A graph variant's totals over a run. */
export interface VariantRow {
  variant: string;
  samples: number;
  gmacsPerSample: number | null;
  msPerSample: number;
  gflops: number | null;
  fractionOfMatmul: number | null;
}

import type { Sd21Result } from "./sd21.ts";

/** Everything `bench.json` holds. */
export interface BenchResult {
  created: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; deno: string; onnxruntime: string };
  config: string;
  set: string[];
  /** The rows measured (null: all rows of the config). */
  rows?: string[] | null;
  quick: boolean;
  matmul: MatmulProbe | null;
  /** The SD 2.1-sized phase (pipeline/bench/sd21.ts) with the MatMul probe beside it. */
  sd21?: (Sd21Result & { matmul_gflops: number | null }) | null;
  full: {
    wallS: number;
    graphBuildS: number;
    peakRssMiB: number | null;
    stages: StageRow[];
    variants: VariantRow[];
    metrics: ChildReport["metrics"];
  } | null;
  schedule: {
    reference: {
      modulateFullPerFrame: number;
      pipelineFullPerFrame: number;
      modulateWallS: number;
      metrics: ChildReport["metrics"];
    };
    optimized: {
      modulateFullPerFrame: number;
      pipelineFullPerFrame: number;
      modulateWallS: number;
      metrics: ChildReport["metrics"];
    };
    /** optimized / reference, FLOP-weighted UNet evaluations per frame of the modulate stage (target ≤ 0.5). */
    ratio: number;
    pipelineRatio: number;
    wallRatio: number;
    /** Config overrides both sides ran with on top of the bench's own (the same plan on both sides). */
    set?: string[];
    /** Rows whose label maps are byte-identical on both sides, and rows where they differ. */
    labels?: { equal: string[]; differ: string[] };
  } | null;
  ablate: {
    fullS: number;
    rowsAloneS: Record<string, number>;
    sumS: number;
    ratio: number;
    /**
     * Modulate's FLOP-weighted UNet evaluations per frame, rows run alone (mean over rows): without the samples
     * the full run shares between rows. Absent in benches written before it existed.
     */
    rowsAloneModulateFullPerFrame?: number;
  } | null;
  rss: {
    small: { frames: number; peakMiB: number | null };
    large: { frames: number; peakMiB: number | null };
    ratio: number | null;
  } | null;
  breakdown: Breakdown | null;
  taesd: {
    vae: ChildReport["metrics"];
    taesd: ChildReport["metrics"];
    decodeMsPerSample: { vae: number | null; taesd: number | null };
    note: string;
  } | null;
}

/** Sum of a stat over the UNet variants of a stage (those with MACs). */
function unetTotals(
  s: StageStats,
): { samples: number; full: number; macs: number; ms: number; decodes: number } {
  let samples = 0, full = 0, macs = 0, ms = 0, decodes = 0;
  for (const [name, v] of Object.entries(s.variants)) {
    if (v.macs > 0) (samples += v.samples), (full += v.fullEquivalents), (macs += v.macs), (ms += v.ms);
    else if (name.endsWith(".decode")) decodes += v.samples;
  }
  return { samples, full, macs, ms, decodes };
}

/** Per-stage rows of a run, in `order`. */
export function stageRows(r: ChildReport, order: readonly string[], matmulGflops: number | null): StageRow[] {
  return order.filter((n) => r.stages[n]).map((name) => {
    const s = r.stages[name], t = unetTotals(s), f = s.frames;
    const gflops = t.ms > 0 ? (2 * t.macs) / (t.ms / 1000) / 1e9 : null;
    // Wall time as the runner's summary reports it (the instrumented run() time where that is missing).
    const wallMs = r.runner?.[name]?.wallMs ?? s.wallMs;
    return {
      stage: name,
      instances: s.run,
      wallS: wallMs / 1000,
      frames: f,
      msPerFrame: f ? wallMs / f : null,
      peakRssMiB: s.peakRss === null ? null : mib(s.peakRss),
      unetSamplesPerFrame: f ? t.samples / f : null,
      unetFullPerFrame: f ? t.full / f : null,
      vaeDecodesPerFrame: f ? t.decodes / f : null,
      unetGflops: gflops,
      unetFractionOfMatmul: gflops !== null && matmulGflops ? gflops / matmulGflops : null,
    };
  });
}

/** Per-variant totals over all stages of a run. */
export function variantRows(r: ChildReport, matmulGflops: number | null): VariantRow[] {
  const acc = new Map<string, { samples: number; macs: number; ms: number }>();
  for (const s of Object.values(r.stages)) {
    for (const [name, v] of Object.entries(s.variants)) {
      const a = acc.get(name) ?? { samples: 0, macs: 0, ms: 0 };
      (a.samples += v.samples), (a.macs += v.macs), (a.ms += v.ms);
      acc.set(name, a);
    }
  }
  return [...acc].map(([variant, a]) => {
    const gflops = a.macs > 0 && a.ms > 0 ? (2 * a.macs) / (a.ms / 1000) / 1e9 : null;
    return {
      variant,
      samples: a.samples,
      gmacsPerSample: a.macs > 0 ? a.macs / a.samples / 1e9 : null,
      msPerSample: a.ms / a.samples,
      gflops,
      fractionOfMatmul: gflops !== null && matmulGflops ? gflops / matmulGflops : null,
    };
  });
}

/** FLOP-weighted UNet evaluations per frame of `stage` (0 when it did not run). */
export function fullPerFrame(r: ChildReport, stage: string): number {
  const s = r.stages[stage];
  return s && s.frames ? unetTotals(s).full / s.frames : 0;
}

/** Decode time per sample (ms) of the `*.decode` variants of the modulate stage. */
export function decodeMsPerSample(r: ChildReport): number | null {
  const s = r.stages.modulate;
  if (!s) return null;
  let n = 0, ms = 0;
  for (const [name, v] of Object.entries(s.variants)) {
    if (name.endsWith(".decode")) (n += v.samples), (ms += v.ms);
  }
  return n ? ms / n : null;
}

/** Schedule comparison from a run with each schedule (features come from the run that computed them). */
export function scheduleSummary(
  reference: ChildReport,
  optimized: ChildReport,
  features: ChildReport,
  set: string[] = [],
): BenchResult["schedule"] {
  const side = (r: ChildReport) => ({
    modulateFullPerFrame: fullPerFrame(r, "modulate"),
    pipelineFullPerFrame: fullPerFrame(features, "features") + fullPerFrame(r, "modulate"),
    modulateWallS: (r.stages.modulate?.wallMs ?? 0) / 1000,
    metrics: r.metrics,
  });
  const a = side(reference), b = side(optimized);
  return {
    reference: a,
    optimized: b,
    ratio: b.modulateFullPerFrame / a.modulateFullPerFrame,
    pipelineRatio: b.pipelineFullPerFrame / a.pipelineFullPerFrame,
    wallRatio: b.modulateWallS / a.modulateWallS,
    set,
    labels: labelAgreement(reference, optimized),
  };
}

/** Rows whose label digests agree between two runs (rows without a digest on either side are left out). */
export function labelAgreement(a: ChildReport, b: ChildReport): { equal: string[]; differ: string[] } {
  const equal: string[] = [], differ: string[] = [];
  for (const [row, d] of Object.entries(a.labelDigests ?? {})) {
    const e = b.labelDigests?.[row];
    if (e === undefined) continue;
    (d === e ? equal : differ).push(row);
  }
  return { equal, differ };
}

/** Machine description. */
export function machineInfo(): BenchResult["machine"] {
  const cpus = os.cpus();
  let ort = "?";
  try {
    const deno = JSON.parse(fs.readFileSync(path.join(import.meta.dirname!, "../../deno.json"), "utf8"));
    ort = String(deno.imports?.["onnxruntime-node"] ?? "?").replace(/^npm:/, "");
  } catch { /* keep "?" */ }
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "?",
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    deno: Deno.version.deno,
    onnxruntime: ort,
  };
}

/** The `full` section from the full run. */
export function fullSection(
  run: ChildRun,
  order: readonly string[],
  matmulGflops: number | null,
): BenchResult["full"] {
  return {
    wallS: run.wallMs / 1000,
    graphBuildS: run.report.graphBuildMs / 1000,
    peakRssMiB: run.report.peakRss === null ? null : mib(run.report.peakRss),
    stages: stageRows(run.report, order, matmulGflops),
    variants: variantRows(run.report, matmulGflops),
    metrics: run.report.metrics,
  };
}

/** Write bench.json and bench.md into `dir`; returns their paths. */
export function writeBench(dir: string, r: BenchResult, markdown: string): { json: string; md: string } {
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, "bench.json"), md = path.join(dir, "bench.md");
  fs.writeFileSync(json, JSON.stringify(r, null, 1) + "\n");
  fs.writeFileSync(md, markdown);
  return { json, md };
}
