/**
 * `deno task figures [--config FILE] [--cache DIR] [--out DIR] [--set KEY=VALUE]... [--compute] …`
 *
 * Renders the paper's figures (qualitative comparison, ablation chart, feature PCA, effect of K, difference
 * maps with/without latent blending) from the cached artifacts of a config's run into `results/figures/`
 * as SVG and PNG. Nothing of the method is recomputed, except the cheap kmeans stage for the K figure; a
 * figure whose artifacts are not cached is skipped with the `ablate` command that produces them (or use
 * --compute to run `ablate` for the config first).
 * @module
 */
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { MissingArtifactError, openRun, resolveConfigFile } from "../report/artifacts.ts";
import { buildFigure, FIGURE_NAMES, type FigureName, type FigureSettings } from "../report/figures.ts";
import { writeFigure } from "../report/plot.ts";
import { ablate } from "./ablate.ts";
import { cacheDirOption, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE = "deno task figures [--config FILE] [--cache DIR] [--out DIR] [--set KEY=VALUE]... [options]";
const OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", value: "FILE", doc: "config whose run is shown (default configs/table2.yaml)" },
  cache: {
    type: "string",
    value: "DIR",
    doc: "cache directory, built graphs in DIR/graphs (default $VIDSEG_CACHE or results/cache)",
  },
  out: { type: "string", value: "DIR", doc: "output directory (default results/figures)" },
  set: {
    type: "list",
    value: "KEY=VALUE",
    doc: "config override, as given to ablate (changes cache keys); repeatable",
  },
  clip: { type: "string", value: "NAME", doc: "clip to show (default: the config's first clip)" },
  frames: { type: "string", value: "I,J,…", doc: "frame indices to show (default: 4 spread over the clip)" },
  rows: {
    type: "string",
    value: "BASE,FULL",
    doc: "rows of the qualitative figure (default A,F; else first,last)",
  },
  "blend-rows": {
    type: "string",
    value: "OFF,ON",
    doc: "rows without/with latent blending (default: closest pair, B,C)",
  },
  "feature-row": {
    type: "string",
    value: "ROW",
    doc: "row whose features and K-Means are shown (default: FULL)",
  },
  ks: { type: "string", value: "K,K,…", doc: "K values of the K figure (default 5,10,20,30)" },
  "diff-frame": {
    type: "string",
    value: "I",
    doc: "frame of the difference-map figure (default: first shown)",
  },
  only: { type: "string", value: "NAMES", doc: `only these figures (${FIGURE_NAMES.join(", ")})` },
  compute: { type: "boolean", doc: "run `ablate` for the config first (fills the cache and the results)" },
  results: {
    type: "string",
    value: "DIR",
    doc: "results root of --compute's ablate (default $VIDSEG_RESULTS or results/)",
  },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** "1,2,3" → numbers (UserError naming the option otherwise). */
export function parseIntList(option: string, value: string): number[] {
  const out = value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (!out.length || out.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UserError(`--${option}: expected non-negative integers separated by commas, got "${value}"`);
  }
  return out;
}

function parsePair(option: string, value: string | undefined): [string, string] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length !== 2) throw new UserError(`--${option}: expected two row names "X,Y", got "${value}"`);
  return [parts[0], parts[1]];
}

/** The figures command; returns the exit code (2 when some figure lacked cached artifacts). */
export async function figures(args: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(args, OPTIONS);
  if (o.help) {
    console.log(helpText(USAGE, OPTIONS, `Figures: ${FIGURE_NAMES.join(", ")} → <out>/<name>.svg and .png.`));
    return 0;
  }
  if (positionals.length) throw new UserError(`unexpected argument "${positionals[0]}" (usage: ${USAGE})`);
  const str = (k: string) => o[k] as string | undefined;
  const configFile = resolveConfigFile(str("config") ?? "configs/table2.yaml", userCwd());
  // The built graphs follow the cache folder (DIR/graphs), as in ablate and segment.
  const cache = str("cache") !== undefined ? cacheDirOption(str("cache"), REPO_ROOT) : undefined;
  const set = o.set as string[];
  const outDir = userPath(str("out") ?? path.join(REPO_ROOT, "results", "figures"));
  const only = str("only")?.split(",").map((s) => s.trim()).filter(Boolean) ?? [...FIGURE_NAMES];
  for (const n of only) {
    if (!(FIGURE_NAMES as readonly string[]).includes(n)) {
      throw new UserError(`--only: unknown figure "${n}" (figures: ${FIGURE_NAMES.join(", ")})`);
    }
  }
  const settings: FigureSettings = {
    clip: str("clip"),
    frames: str("frames") ? parseIntList("frames", str("frames")!) : undefined,
    compare: parsePair("rows", str("rows")),
    blend: parsePair("blend-rows", str("blend-rows")),
    featureRow: str("feature-row"),
    ks: str("ks") ? parseIntList("ks", str("ks")!) : undefined,
    diffFrame: str("diff-frame") ? parseIntList("diff-frame", str("diff-frame")!)[0] : undefined,
  };
  if (o.compute) {
    const code = await ablate([
      configFile,
      ...(cache ? ["--cache", cache] : []),
      ...(str("results") ? ["--results", userPath(str("results")!)] : []),
      ...set.flatMap((s) => ["--set", s]),
    ]);
    if (code !== 0) return code;
  }
  const run = await openRun(configFile, { cache, set });
  // Unknown row names fail here, in one line, before any figure is drawn.
  const named = [...(settings.compare ?? []), ...(settings.blend ?? []), settings.featureRow ?? run.rows[0]];
  for (const r of named) run.row(r);
  if (settings.clip && !run.clips.includes(settings.clip)) {
    throw new UserError(
      `--clip: no clip "${settings.clip}" in ${configFile} (clips: ${run.clips.join(", ")})`,
    );
  }
  const skipped: string[] = [];
  for (const name of only as FigureName[]) {
    const t0 = performance.now();
    try {
      const fig = await buildFigure(name, run, settings);
      const files = await writeFigure(path.join(outDir, name), fig.svg);
      const shown = path.relative(userCwd(), files.svg);
      console.log(
        `figures: ${shown.startsWith("..") ? files.svg : shown}, .png (${
          Math.round(performance.now() - t0)
        } ms)`,
      );
    } catch (e) {
      if (!(e instanceof MissingArtifactError)) throw e;
      skipped.push(name);
      console.error(`figures: skipped ${name}: ${e.message}`);
    }
  }
  if (skipped.length) {
    console.error(
      `figures: ${skipped.length} figure(s) skipped for lack of cached artifacts; fill the cache with` +
        ` \`${run.ablateCommand()}\` or rerun with --compute`,
    );
    return 2;
  }
  return 0;
}

if (import.meta.main) await runMain(figures);
