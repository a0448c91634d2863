/**
 * `deno task notebooks [--config FILE] [--cache DIR] [--results DIR] [--out DIR] [--set KEY=VALUE]... [--only NAMES]`
 *
 * Executes every notebook of `notebooks/` headless against a config's cached run and writes the executed
 * copies to `results/notebooks/` — never into `notebooks/`, which keeps the notebooks without outputs.
 * Engines: `nbconvert` (jupyter nbconvert + the Deno kernel) and `script` (the code cells as one module in a
 * `deno run` subprocess, report/notebook_script.ts); by default nbconvert when it and the kernel are
 * installed, else script. The notebooks read their settings from the environment: VIDSEG_CONFIG,
 * VIDSEG_CACHE, VIDSEG_RESULTS, VIDSEG_SET (";"-separated overrides), VIDSEG_CLIP, VIDSEG_ROW.
 *
 * The nbconvert engine needs `jupyter nbconvert` (Debian: jupyter-nbconvert jupyter-client python3-nbclient)
 * and the Deno kernel (`deno jupyter --install`); the script engine needs nothing but Deno.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { openRun, resolveConfigFile } from "../report/artifacts.ts";
import { runNotebookScript } from "../report/notebook_script.ts";
import { ablate } from "./ablate.ts";
import { cacheDirOption, helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE =
  "deno task notebooks [--config FILE] [--cache DIR] [--results DIR] [--out DIR] [--set KEY=VALUE]...";
const OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: "string",
    value: "FILE",
    doc: "config whose run the notebooks show (default configs/table2.yaml)",
  },
  cache: {
    type: "string",
    value: "DIR",
    doc: "cache directory, built graphs in DIR/graphs (default $VIDSEG_CACHE or results/cache)",
  },
  results: { type: "string", value: "DIR", doc: "results root with <config>/metrics.csv (default results/)" },
  out: { type: "string", value: "DIR", doc: "where executed notebooks go (default results/notebooks)" },
  set: {
    type: "list",
    value: "KEY=VALUE",
    doc: "config override, as given to ablate (changes cache keys); repeatable",
  },
  clip: { type: "string", value: "NAME", doc: "clip the notebooks show (default: the config's first clip)" },
  row: {
    type: "string",
    value: "ROW",
    doc: "row of the features and explore notebooks (default: F, else the last)",
  },
  only: {
    type: "string",
    value: "NAMES",
    doc: "only these notebooks (names without .ipynb, comma-separated)",
  },
  timeout: { type: "string", value: "SECONDS", doc: "per-cell time limit (default 900)" },
  engine: {
    type: "string",
    value: "NAME",
    doc:
      "nbconvert (Jupyter + Deno kernel) or script (deno run); default nbconvert when installed, else script",
  },
  compute: { type: "boolean", doc: "run `ablate` for the config first (fills the cache and results)" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** The notebooks folder of the repo. */
export const NOTEBOOKS_DIR = path.join(REPO_ROOT, "notebooks");

/** Notebook names (without .ipynb) in `dir`, sorted. */
export function listNotebooks(dir = NOTEBOOKS_DIR): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith(".ipynb") && !f.startsWith(".")).map((f) =>
    f.slice(0, -6)
  ).sort();
}

async function run(cmd: string, args: string[], env?: Record<string, string>) {
  try {
    const o = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    return {
      code: o.code,
      stdout: new TextDecoder().decode(o.stdout),
      stderr: new TextDecoder().decode(o.stderr),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Why the nbconvert engine cannot run (jupyter nbconvert or the Deno kernel missing), or null. */
export async function jupyterMissing(): Promise<string | null> {
  try {
    await checkJupyter();
    return null;
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
}

/** UserError unless `jupyter nbconvert` and the Deno kernel are installed. */
export async function checkJupyter(): Promise<void> {
  const nbc = await run("jupyter", ["nbconvert", "--version"]);
  if (!nbc || nbc.code !== 0) {
    throw new UserError(
      "jupyter nbconvert not found: install it (Debian: apt-get install jupyter-nbconvert jupyter-client python3-nbclient)",
    );
  }
  const ks = await run("jupyter", ["kernelspec", "list", "--json"]);
  let names: string[] = [];
  try {
    names = Object.keys(JSON.parse(ks?.stdout ?? "{}").kernelspecs ?? {});
  } catch { /* reported below */ }
  if (!names.includes("deno")) {
    throw new UserError(
      `the Deno Jupyter kernel is not installed (kernels: ${
        names.join(", ") || "none"
      }): run \`deno jupyter --install\``,
    );
  }
}

/** What an executed notebook contains. */
export interface NotebookSummary {
  /** "ename: evalue" of every error output. */
  errors: string[];
  /** display_data / execute_result outputs, and how many of them are images (SVG or PNG). */
  displays: number;
  images: number;
  /** Code cells (after the first, the settings cell) that produced no output. */
  silentCells: number;
}

/** Summarise the outputs of an executed .ipynb file. */
export function summariseNotebook(file: string): NotebookSummary {
  const nb = JSON.parse(fs.readFileSync(file, "utf8")) as {
    cells: {
      cell_type: string;
      outputs?: { output_type: string; data?: Record<string, unknown>; ename?: string; evalue?: string }[];
    }[];
  };
  const out: NotebookSummary = { errors: [], displays: 0, images: 0, silentCells: 0 };
  nb.cells.filter((c) => c.cell_type === "code").forEach((c, i) => {
    const outputs = c.outputs ?? [];
    if (i > 0 && outputs.length === 0) out.silentCells++;
    for (const o of outputs) {
      if (o.output_type === "error") out.errors.push(`${o.ename}: ${o.evalue}`);
      if (o.output_type === "display_data" || o.output_type === "execute_result") {
        out.displays++;
        if (o.data && ("image/svg+xml" in o.data || "image/png" in o.data)) out.images++;
      }
    }
  });
  return out;
}

/** The last informative lines of nbconvert's stderr (the failing cell's error). */
function errorTail(stderr: string): string {
  const lines = stderr.split("\n").filter((l) =>
    l.trim() && !/unstable and might change|^\[NbConvertApp\]|MissingIDFieldWarning|validate\(nb\)/.test(l)
  );
  return lines.slice(-12).join("\n");
}

/** The notebooks command; returns the exit code (1 when a notebook failed). */
export async function notebooks(args: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(args, OPTIONS);
  if (o.help) {
    console.log(
      helpText(USAGE, OPTIONS, `Notebooks: ${listNotebooks().join(", ") || "(none)"} → <out>/<name>.ipynb.`),
    );
    return 0;
  }
  if (positionals.length) throw new UserError(`unexpected argument "${positionals[0]}" (usage: ${USAGE})`);
  const str = (k: string) => o[k] as string | undefined;
  const set = o.set as string[];
  for (const s of set) {
    if (s.includes(";")) {
      throw new UserError(`--set ${s}: values containing ";" cannot be passed to notebooks`);
    }
  }
  const configFile = resolveConfigFile(str("config") ?? "configs/table2.yaml", userCwd());
  const cache = cacheDirOption(str("cache"), REPO_ROOT);
  const results = userPath(
    str("results") ?? Deno.env.get("VIDSEG_RESULTS") ?? path.join(REPO_ROOT, "results"),
  );
  const outDir = userPath(str("out") ?? path.join(REPO_ROOT, "results", "notebooks"));
  if (path.resolve(outDir) === NOTEBOOKS_DIR) {
    throw new UserError(`--out: executed notebooks must not overwrite ${NOTEBOOKS_DIR}`);
  }
  const timeout = Number(str("timeout") ?? 900);
  if (!(timeout > 0)) {
    throw new UserError(`--timeout: expected a positive number of seconds, got "${str("timeout")}"`);
  }
  const all = listNotebooks();
  const only = str("only")?.split(",").map((s) => s.trim().replace(/\.ipynb$/, "")).filter(Boolean) ?? all;
  for (const n of only) {
    if (!all.includes(n)) throw new UserError(`--only: no notebook "${n}" (notebooks: ${all.join(", ")})`);
  }

  const checkCached = async () => {
    // Fail early, in one line, on a bad config/cache/--set, and on a cache without this config's label maps
    // (the notebooks read them; they never start hours of computing on their own).
    const view = await openRun(configFile, { cache, set });
    const roleOf = new Map(view.plan.stages.map((s) => [s.name, s.role]));
    const missing = view.plan.rows.filter((r) =>
      r.slots.some((s) => roleOf.get(s.stage) === "labels" && !view.runner.store.has(s.stage, s.key))
    ).map((r) => r.name);
    if (missing.length) {
      throw new UserError(
        `${view.cacheDir}: no finished run of ${configFile} for row(s) ${
          missing.join(", ")
        } in this cache; fill it with: ${
          view.ablateCommand(missing.length === view.plan.rows.length ? undefined : missing)
        } (or pass --compute)`,
      );
    }
  };
  if (!o.compute) await checkCached(); // before Jupyter: the first thing a user must fix
  const engine = str("engine") ?? ((await jupyterMissing()) ? "script" : "nbconvert");
  if (engine === "nbconvert") await checkJupyter();
  else if (engine !== "script") {
    throw new UserError(`--engine: expected nbconvert or script, got "${engine}"`);
  }
  if (o.compute) {
    const code = await ablate([
      configFile,
      "--cache",
      cache,
      "--results",
      results,
      ...set.flatMap((s) => ["--set", s]),
    ]);
    if (code !== 0) return code;
    await checkCached();
  }
  fs.mkdirSync(outDir, { recursive: true });
  const env: Record<string, string> = {
    VIDSEG_CONFIG: configFile,
    VIDSEG_CACHE: cache,
    VIDSEG_RESULTS: results,
    VIDSEG_SET: set.join(";"),
    NO_COLOR: "1",
  };
  if (str("clip")) env.VIDSEG_CLIP = str("clip")!;
  if (str("row")) env.VIDSEG_ROW = str("row")!;
  let failed = 0;
  for (const name of only) {
    const t0 = performance.now();
    const outFile = path.join(outDir, `${name}.ipynb`);
    fs.rmSync(outFile, { force: true }); // a stale copy must not pass for this run's
    const notebook = path.join(NOTEBOOKS_DIR, `${name}.ipynb`);
    const res = engine === "script"
      ? await runNotebookScript(notebook, outDir, {
        env,
        timeoutSec: timeout,
        denoConfig: path.join(REPO_ROOT, "deno.json"),
      })
      : await run("jupyter", [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        `--ExecutePreprocessor.timeout=${timeout}`,
        "--ExecutePreprocessor.kernel_name=deno",
        "--output-dir",
        outDir,
        notebook,
      ], env);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (!res || res.code !== 0 || !fs.existsSync(outFile)) {
      failed++;
      console.error(`notebooks: ${name} FAILED after ${secs} s\n${errorTail(res?.stderr ?? "")}`);
      continue;
    }
    const s = summariseNotebook(outFile);
    if (s.errors.length) {
      failed++;
      console.error(`notebooks: ${name}: error output(s): ${s.errors.join("; ")}`);
      continue;
    }
    const silent = s.silentCells ? `, ${s.silentCells} cell(s) without output` : "";
    console.log(
      `notebooks: ${outFile} (${s.displays} outputs, ${s.images} figures${silent}; ${secs} s, ${engine})`,
    );
  }
  return failed ? 1 : 0;
}

if (import.meta.main) await runMain(notebooks);
