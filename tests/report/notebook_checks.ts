/**
 * What every execution of the notebooks must show, whichever engine ran them (`deno task notebooks --engine
 * nbconvert|script`): tests/notebooks_test.ts uses the engine a plain machine has, tests/system/ forces nbconvert.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { argsWithoutOverrides, cli, smallRun, withTempDir } from "./small_run.ts";

export const NOTEBOOKS = path.join(ROOT, "notebooks");
export const NOTEBOOK_NAMES = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort();

export interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}
export interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}
export const readNotebook = (file: string) =>
  JSON.parse(fs.readFileSync(file, "utf8")) as { cells: Cell[]; metadata: Record<string, any> };
export const cellText = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);

/** Every notebook executes against the small run: no error output, figures, the metrics tables, notebooks/ untouched. */
export async function checkNotebooksExecute(engine: "nbconvert" | "script"): Promise<void> {
  const r = await smallRun();
  await withTempDir("notebooks", async (out) => {
    const before = fs.readdirSync(NOTEBOOKS).sort();
    const res = await cli("notebooks.ts", [
      ...r.args,
      "--results",
      r.results,
      "--out",
      out,
      "--engine",
      engine,
    ]);
    assertEquals(res.code, 0, `${res.stdout}\n${res.stderr}`);
    for (const n of NOTEBOOK_NAMES) {
      const file = path.join(out, n);
      assert(fs.existsSync(file), `${n}: no executed copy in ${out}`);
      const code = readNotebook(file).cells.filter((c) => c.cell_type === "code");
      code.forEach((c, i) => assertEquals(c.execution_count, i + 1, `${n}: cell ${i} not executed in order`));
      const outputs = code.flatMap((c) => c.outputs ?? []);
      const errors = outputs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`);
      assertEquals(errors, [], `${n}: error outputs`);
      const figures = outputs.filter((o) =>
        (o.output_type === "display_data" || o.output_type === "execute_result") && o.data &&
        ("image/svg+xml" in o.data || "image/png" in o.data)
      );
      assertGreater(figures.length, 0, `${n}: no figure displayed`);
      for (const f of figures) {
        const svg = String(
          ([] as string[]).concat(f.data!["image/svg+xml"] as string | string[] ?? []).join(""),
        );
        if (svg) {
          assert(/^<svg\b/.test(svg) && svg.trimEnd().endsWith("</svg>"), `${n}: malformed SVG output`);
        }
      }
      assert(res.stdout.includes(file), `${n} not reported:\n${res.stdout}`);
      assert(res.stdout.includes(`, ${engine})`), `${n}: not run by ${engine}:\n${res.stdout}`);
    }
    // The metrics notebook read the small run's results table, and the rows' per-frame IoU.
    const metrics = JSON.stringify(readNotebook(path.join(out, "metrics.ipynb")));
    assert(metrics.includes("small: mIoU and video consistency"), "metrics.csv table missing");
    assert(metrics.includes("per-frame mIoU"), "per-frame IoU table missing");
    assertEquals(fs.readdirSync(NOTEBOOKS).sort(), before, "notebooks/ must not be written to");
  });
}

/** Notebooks over a cache without the config's run: one error line naming the ablate command, before any runs. */
export async function checkMissingArtifactReported(engine: "nbconvert" | "script"): Promise<void> {
  const r = await smallRun();
  await withTempDir("notebooks", async (out) => {
    // Without the overrides no artifact of this config is cached.
    const res = await cli("notebooks.ts", [...argsWithoutOverrides(r, out, "explore"), "--engine", engine]);
    assertEquals(res.code, 2, res.stderr);
    const lines = res.stderr.trim().split("\n");
    assertEquals(lines.length, 1, res.stderr);
    assert(lines[0].startsWith("error: ") && lines[0].includes("no finished run of"), res.stderr);
    assert(lines[0].includes("deno task ablate"), res.stderr);
    assertEquals(fs.readdirSync(out), [], "no notebook written");
  });
}
