/**
 * `deno task bench [--config FILE] [--set KEY=VALUE]... [--out DIR] [--quick] [--phases LIST]`
 *
 * Measures the pipeline on a config (default: configs/table2.yaml, the embedded model and data) and writes
 * `<out>/bench.json` and `<out>/bench.md` (default results/bench/): per-stage wall time, UNet sample-evaluations
 * per frame (raw and FLOP-weighted by each graph variant's MACs), VAE decodes per frame, peak RSS, this machine's
 * fp32 MatMul GFLOP/s and the UNet's achieved fraction of it; and, from the same bench run, the ratios
 * optimized / reference modulation schedule, full ablate / Σ rows alone on cold caches, and peak RSS of a
 * 10× longer synthetic clip. `--quick` caps every clip at 14 frames (both sides of each ratio) and uses
 * 14- and 140-frame synthetic clips instead of 28 and 280. Each measured run is a separate process.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { loadConfig, selectRows } from "../config/load.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { defaultGraphCacheDir } from "../backbone/onnx/cache.ts";
import { STAGES } from "../stages/mod.ts";
import { matmulProbe } from "../bench/matmul.ts";
import { type BenchDirs, type ChildRun, freshDir, rssRuns, runChildProcess } from "../bench/scenarios.ts";
import { modulateBreakdown } from "../bench/breakdown.ts";
import {
  type BenchResult,
  decodeMsPerSample,
  fullSection,
  fullPerFrame,
  machineInfo,
  scheduleSummary,
  writeBench,
} from "../bench/report.ts";
import { benchMarkdown } from "../bench/markdown.ts";
import { mib } from "../bench/rss.ts";
import type { Sd21Result } from "../bench/sd21.ts";
import { helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE = "deno task bench [--config FILE] [--set KEY=VALUE]... [--out DIR] [--quick] [--phases LIST]";
const PHASES = ["matmul", "full", "schedule", "taesd", "breakdown", "rows", "rss", "sd21"] as const;
/** Phases run when --phases is not given (sd21 builds a 3.5 GB model: only on request). */
const DEFAULT_PHASES = PHASES.filter((p) => p !== "sd21");
const OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", value: "FILE", doc: "config to measure (default configs/table2.yaml)" },
  set: { type: "list", value: "KEY=VALUE", doc: "override a config key in every row; repeatable" },
  out: { type: "string", value: "DIR", doc: "where bench.json and bench.md go (default results/bench)" },
  quick: {
    type: "boolean",
    doc: "clips capped at 14 frames, synthetic clips of 14/140 frames (instead of 28/280)",
  },
  phases: {
    type: "string",
    value: "LIST",
    doc: `comma-separated subset of ${PHASES.join(",")} (default all but sd21)`,
  },
  "rss-frames": {
    type: "string",
    value: "N",
    doc: "frames of the short synthetic clip (the long one has 10·N; default 28, --quick 14)",
  },
  rows: {
    type: "string",
    value: "LIST",
    doc: "comma-separated rows of the config to measure (default all; the `rows` phase needs all of them)",
  },
  work: { type: "string", value: "DIR", doc: "folder for the temporary caches (default a new temp folder)" },
  keep: { type: "boolean", doc: "keep the temporary caches" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

const log = (msg: string) => console.error(msg);

/** The bench command; returns the exit code. */
export async function bench(args: string[]): Promise<number> {
  const { options } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(
      helpText(
        USAGE,
        OPTIONS,
        "Heavy: on the embedded data a full bench takes hours on 2 CPU cores; try --quick.",
      ),
    );
    return 0;
  }
  const phases = new Set(
    typeof options.phases === "string"
      ? options.phases.split(",").map((s) => s.trim()).filter(Boolean)
      : DEFAULT_PHASES,
  );
  for (const p of phases) {
    if (!(PHASES as readonly string[]).includes(p)) {
      throw new UserError(`--phases: unknown phase "${p}" (phases: ${PHASES.join(", ")})`);
    }
  }
  const quick = options.quick === true;
  const configFile = userPath(
    (options.config as string | undefined) ?? path.join(REPO_ROOT, "configs", "table2.yaml"),
  );
  const userSet = options.set as string[];
  const set = quick ? [...userSet, "dataset.max_frames=14"] : userSet;
  const loaded = loadConfig(configFile, { set, cwd: userCwd() }); // validates before anything heavy starts
  const only = typeof options.rows === "string" ? options.rows.split(",").map((r) => r.trim()).filter(Boolean) : null;
  const config = only ? selectRows(loaded, only) : loaded;
  const rowNames = config.rows.map((r) => r.name);
  const rowsSpec = only ? { rows: rowNames } : {};
  const lastRow = config.rows[config.rows.length - 1];
  const outDir = userPath((options.out as string | undefined) ?? path.join(REPO_ROOT, "results", "bench"));
  const work = options.work
    ? userPath(options.work as string)
    : fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-bench-"));
  fs.mkdirSync(work, { recursive: true });
  const dirs: BenchDirs = { work, graphs: defaultGraphCacheDir() };
  const order = STAGES.map((s) => s.name);
  const result: BenchResult = {
    created: new Date().toISOString(),
    machine: machineInfo(),
    config: path.relative(REPO_ROOT, configFile) || configFile,
    set: userSet,
    rows: only,
    quick,
    matmul: null,
    full: null,
    schedule: null,
    ablate: null,
    rss: null,
    breakdown: null,
    taesd: null,
  };
  // Phases run separately (e.g. `--phases rss` later) complete an earlier bench of the same config instead of
  // erasing its other sections.
  const previous = readPrevious(outDir, result);
  if (previous) {
    for (const k of ["matmul", "full", "schedule", "ablate", "rss", "breakdown", "taesd", "sd21"] as const) {
      if (!phaseOwns(k, phases)) (result as unknown as Record<string, unknown>)[k] = previous[k] ?? null;
    }
    log(`bench: completing ${path.join(outDir, "bench.json")} (kept sections of phases not run now)`);
  }
  const save = () => writeBench(outDir, result, benchMarkdown(result));
  try {
    if (phases.has("matmul")) {
      result.matmul = await matmulProbe({ n: 1024, runs: 5 });
      log(`bench: MatMul probe ${result.matmul.gflops.toFixed(1)} GFLOP/s`);
    }
    const gf = result.matmul?.gflops ?? null;
    if (phases.has("sd21")) {
      const probe = result.matmul ?? await matmulProbe({ n: 1024, runs: 5 });
      const r = await runSd21Child(path.join(work, "sd21"), quick, log);
      result.sd21 = { ...r, matmul_gflops: probe.gflops };
      save();
    }
    const fullCache = path.join(work, "cache-full");
    let full: ChildRun | null = null;
    if (phases.has("full")) {
      full = await runChildProcess(dirs, "full", {
        ...rowsSpec,
        config: configFile,
        set,
        cache: freshDir(dirs, "cache-full"),
        results: path.join(work, "results-full"),
      }, log);
      result.full = fullSection(full, order, gf);
      save();
    }
    const schedule = lastRow.config.schedule;
    let optimizedRun: ChildRun | null = schedule === "optimized" ? full : null;
    if (phases.has("schedule") && full) {
      const other = schedule === "reference" ? "optimized" : "reference";
      // The reference side is the reference code's plan literally, repeated last batch included (docs/method.md
      // §13.14). That plan changes the labels (the KNN loop sees the repeat), so when the measured config skips
      // the repeat, the optimized side is rerun on the literal plan too: both sides then have the same labels
      // and the ratio is the schedule's alone (the optimized schedule still runs a repeat once — it is identical).
      const literal = lastRow.config.dedupe_last_batch ? ["dedupe_last_batch=false"] : [];
      const flip = await runChildProcess(dirs, `schedule-${other}`, {
        ...rowsSpec,
        config: configFile,
        set: [...set, `schedule=${other}`, ...literal],
        cache: fullCache,
      }, log);
      if (other === "optimized") optimizedRun = flip;
      let [ref, opt] = other === "optimized" ? [full, flip] : [flip, full];
      if (other === "reference" && literal.length) {
        opt = await runChildProcess(dirs, "schedule-optimized-literal-plan", {
          ...rowsSpec,
          config: configFile,
          set: [...set, "schedule=optimized", ...literal],
          cache: fullCache,
        }, log);
      }
      result.schedule = scheduleSummary(ref.report, opt.report, full.report, literal);
      const { equal, differ } = result.schedule!.labels!;
      log(`bench: schedule labels byte-identical in ${equal.length}/${equal.length + differ.length} rows` +
        (differ.length ? ` (differ: ${differ.join(", ")})` : ""));
      save();
    }
    if (phases.has("taesd") && full && lastRow.config.modulation.decoder === "vae") {
      const t = await runChildProcess(dirs, "taesd", {
        ...rowsSpec,
        config: configFile,
        set: [...set, "schedule=optimized", "modulation.decoder=taesd"],
        cache: fullCache,
      }, log);
      result.taesd = {
        vae: optimizedRun?.report.metrics ?? {},
        taesd: t.report.metrics,
        decodeMsPerSample: {
          vae: optimizedRun ? decodeMsPerSample(optimizedRun.report) : null,
          taesd: decodeMsPerSample(t.report),
        },
        note: taesdNote(lastRow.config.backbone.weights),
      };
      save();
    }
    if (phases.has("breakdown")) {
      result.breakdown = await modulateBreakdown({
        config: configFile,
        set,
        row: lastRow.name,
        cache: fullCache,
      }, log);
      save();
    }
    if (phases.has("rows") && (full || result.full)) {
      // Without a `full` run now, compare with the previous bench's full run of the same config.
      const fullS = full ? full.wallMs / 1000 : result.full!.wallS;
      const alone: Record<string, number> = {};
      const aloneFlops: number[] = [];
      for (const row of rowNames) {
        const r = await runChildProcess(dirs, `row-${row}`, {
          config: configFile,
          set,
          rows: [row],
          cache: freshDir(dirs, `cache-row-${row}`),
        }, log);
        alone[row] = r.wallMs / 1000;
        aloneFlops.push(fullPerFrame(r.report, "modulate"));
      }
      const sum = Object.values(alone).reduce((a, b) => a + b, 0);
      result.ablate = {
        fullS,
        rowsAloneS: alone,
        sumS: sum,
        ratio: fullS / sum,
        rowsAloneModulateFullPerFrame: aloneFlops.reduce((a, b) => a + b, 0) / aloneFlops.length,
      };
      save();
    }
    if (phases.has("rss")) {
      const res = lastRow.config.resolution ?? [320, 256];
      const small = options["rss-frames"] ? Number(options["rss-frames"]) : quick ? 14 : 28;
      if (!(Number.isInteger(small) && small >= 1)) {
        throw new UserError(`--rss-frames: expected a positive integer`);
      }
      const [a, b] = await rssRuns(
        dirs,
        { config: configFile, set: userSet, row: lastRow.name, size: [res[1], res[0]] },
        small,
        log,
      );
      const pa = a.report.peakRss, pb = b.report.peakRss;
      result.rss = {
        small: { frames: small, peakMiB: pa === null ? null : mib(pa) },
        large: { frames: 10 * small, peakMiB: pb === null ? null : mib(pb) },
        ratio: pa && pb ? pb / pa : null,
      };
    }
  } finally {
    const files = save();
    if (!options.keep && !options.work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`bench: ${files.md}`);
    console.log(`       ${files.json}`);
  }
  return 0;
}

/** The sd21 phase in its own process (its peak RSS is its own); progress on stderr, the result on stdout. */
async function runSd21Child(work: string, quick: boolean, log: (m: string) => void): Promise<Sd21Result> {
  log("bench: sd21 (SD 2.1-base-sized model from random weights; ~3.5 GB written under the work folder)");
  const script = path.join(REPO_ROOT, "pipeline", "bench", "sd21.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--work", work, ...(quick ? ["--quick"] : [])],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench: the sd21 phase failed (exit ${out.code})`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Sd21Result;
}

/** The section of bench.json each phase writes. */
function phaseOwns(section: string, phases: Set<string>): boolean {
  const owner: Record<string, string> = { ablate: "rows" };
  return phases.has(owner[section] ?? section);
}

/** An earlier bench.json in `dir` of the same config, --set and --quick, or null. */
function readPrevious(dir: string, now: BenchResult): BenchResult | null {
  try {
    const prev = JSON.parse(fs.readFileSync(path.join(dir, "bench.json"), "utf8")) as BenchResult;
    const same = prev.config === now.config && prev.quick === now.quick &&
      JSON.stringify(prev.set) === JSON.stringify(now.set) && JSON.stringify(prev.rows ?? null) === JSON.stringify(now.rows ?? null);
    return same ? prev : null;
  } catch {
    return null;
  }
}

/** Which TAESD the `taesd` decoder loads, and what that means for the comparison. */
function taesdNote(weights: string): string {
  let cls = "?";
  try {
    cls = String(JSON.parse(fs.readFileSync(path.join(weights, "vae", "config.json"), "utf8"))._class_name);
  } catch { /* no vae/config.json */ }
  return cls === "AutoencoderTiny"
    ? "This model's own VAE is a TAESD-type AutoencoderTiny, so `decoder: taesd` (data/models/tiny-ldm/vae) is the same kind of " +
      "decoder; the comparison matters for KL-VAE models such as SD 2.1, where TAESD replaces the much larger KL decoder."
    : `This model's VAE is ${cls}; \`decoder: taesd\` decodes its latents with data/models/tiny-ldm/vae (SD-latent TAESD).`;
}

if (import.meta.main) await runMain(bench);
