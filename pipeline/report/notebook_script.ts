/**
 * Executes a Deno notebook without Jupyter: its code cells, in order, as one module in a `deno run`
 * subprocess, with the Deno kernel's semantics that the notebooks rely on — declarations of one cell are seen
 * by the later ones, top-level `await` works, relative imports resolve against the notebook's folder (also the
 * working directory), and `Deno.jupyter.display` records rich outputs. Each output is appended to a JSON-lines
 * file as it happens, so a failing cell keeps the outputs before it; the executed copy is then written in the
 * .ipynb form nbconvert writes (display_data / stream / error outputs, execution counts). Unlike the kernel,
 * the value of a cell's last expression is not displayed (the notebooks display through report/notebook.ts).
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

/** One output of an executed code cell, as in .ipynb files. */
export interface CellOutput {
  output_type: "display_data" | "stream" | "error";
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  name?: "stdout" | "stderr";
  text?: string;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: CellOutput[];
  execution_count?: number | null;
  [key: string]: unknown;
}

/** What executing a notebook gave: the subprocess' exit code and stderr, and the executed copy's path. */
export interface ScriptRun {
  code: number;
  stderr: string;
  outFile: string;
}

/**
 * Runs before the cells: defines `Deno.jupyter.display` and routes console output to the outputs file.
 * `globalThis.__notebookCell(i)` marks the start of code cell i.
 */
const PRELUDE = `
const file = Deno.env.get("VIDSEG_NOTEBOOK_OUTPUTS");
let cell = 0;
const record = (output) => Deno.writeTextFileSync(file, JSON.stringify({ cell, output }) + "\\n", { append: true });
globalThis.__notebookCell = (i) => { cell = i; record(null); };
const stream = (name) => (...args) => record({ output_type: "stream", name, text: args.map((a) =>
  typeof a === "string" ? a : Deno.inspect(a, { colors: false })).join(" ") + "\\n" });
console.log = console.info = console.debug = stream("stdout");
console.error = console.warn = stream("stderr");
Deno.jupyter = {
  display(bundle, opts = {}) {
    const data = opts.raw ? bundle : { "text/plain": Deno.inspect(bundle, { colors: false }) };
    record({ output_type: "display_data", data, metadata: {} });
    return Promise.resolve();
  },
};
`;

const source = (c: NotebookCell) => (Array.isArray(c.source) ? c.source.join("") : c.source);

/** Relative module specifiers (static and dynamic imports) made absolute against the notebook's folder. */
function absoluteImports(code: string, dir: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\2/g,
    (_m, head: string, q: string, spec: string) =>
      `${head}${q}${pathToFileURL(path.resolve(dir, spec)).href}${q}`,
  );
}

/**
 * The module text of a notebook's code cells. An import declaration repeated verbatim in a later cell is
 * dropped (the kernel accepts it; one module would not).
 */
export function notebookModule(cells: string[], notebookDir: string, prelude: string): string {
  const seen = new Set<string>();
  const parts = [`import ${JSON.stringify(pathToFileURL(prelude).href)};`];
  cells.forEach((code, i) => {
    const body = absoluteImports(code, notebookDir).replace(
      /^import\s[^;]*?["'][^"']+["'];?[ \t]*$/gm,
      (decl) => {
        const key = decl.replace(/\s+/g, " ").replace(/;?\s*$/, "");
        if (seen.has(key)) return `// (already imported) ${key}`;
        seen.add(key);
        return decl;
      },
    );
    parts.push(`globalThis.__notebookCell(${i});`, body, ";");
  });
  return parts.join("\n") + "\n";
}

/** The error message of a failed `deno run` (its "error: Uncaught ..." line and what follows). */
function errorOf(stderr: string): { ename: string; evalue: string } {
  const m = /error: (?:Uncaught (?:\(in promise\) )?)?(?:([A-Za-z_$][\w$]*): )?([^\n]*)/.exec(stderr);
  return { ename: m?.[1] ?? "Error", evalue: m ? m[2] : stderr.trim().split("\n").slice(-1)[0] ?? "" };
}

/**
 * Execute `notebook` (an .ipynb path) and write the executed copy to `outDir/<name>.ipynb`.
 * `env` is added to the subprocess' environment; `timeoutSec` bounds each code cell on average.
 */
export async function runNotebookScript(
  notebook: string,
  outDir: string,
  opts: { env?: Record<string, string>; timeoutSec?: number; denoConfig: string },
): Promise<ScriptRun> {
  const nb = JSON.parse(fs.readFileSync(notebook, "utf8")) as {
    cells: NotebookCell[];
    metadata: Record<string, unknown>;
  };
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-notebook-"));
  try {
    const prelude = path.join(work, "prelude.js"), main = path.join(work, "notebook.ts");
    const outputsFile = path.join(work, "outputs.jsonl");
    fs.writeFileSync(prelude, PRELUDE);
    fs.writeFileSync(outputsFile, "");
    const dir = path.dirname(path.resolve(notebook));
    fs.writeFileSync(main, notebookModule(code.map(source), dir, prelude));
    const signal = AbortSignal.timeout(1000 * (opts.timeoutSec ?? 900) * Math.max(1, code.length));
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--config", opts.denoConfig, main],
      cwd: dir,
      env: { ...opts.env, VIDSEG_NOTEBOOK_OUTPUTS: outputsFile, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
    const stderr = new TextDecoder().decode(res.stderr);
    // Outputs per code cell; the last cell started is where a failure happened.
    const outputs: CellOutput[][] = code.map(() => []);
    let reached = -1;
    for (const line of fs.readFileSync(outputsFile, "utf8").split("\n").filter(Boolean)) {
      const { cell, output } = JSON.parse(line) as { cell: number; output: CellOutput | null };
      reached = Math.max(reached, cell);
      if (output) outputs[cell].push(output);
    }
    if (!res.success) {
      const err = errorOf(stderr);
      outputs[Math.max(reached, 0)].push({ output_type: "error", ...err, traceback: stderr.split("\n") });
    }
    let i = 0;
    const cells = nb.cells.map((c) => {
      if (c.cell_type !== "code") return c;
      const k = i++;
      return { ...c, outputs: outputs[k], execution_count: k <= reached ? k + 1 : null };
    });
    fs.mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, path.basename(notebook));
    fs.writeFileSync(outFile, JSON.stringify({ ...nb, cells }, null, 1) + "\n");
    return { code: res.code, stderr, outFile };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
