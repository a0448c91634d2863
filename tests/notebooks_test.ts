/**
 * The notebooks (notebooks/*.ipynb): committed without outputs, configured from the environment, and
 * executed headless by `deno task notebooks` (jupyter nbconvert + the Deno kernel) against the small cached
 * run of tests/report/small_run.ts without error outputs and with figures. Skipped only when jupyter is not
 * installed (CI installs it: .ci/run); a missing Deno kernel fails with the command that installs it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "./assert.ts";
import { ROOT } from "./shared.ts";
import { argsWithoutOverrides, cli, smallRun, withTempDir } from "./report/small_run.ts";

const NOTEBOOKS = path.join(ROOT, "notebooks");
const names = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort();

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}
const read = (file: string) =>
  JSON.parse(fs.readFileSync(file, "utf8")) as { cells: Cell[]; metadata: Record<string, any> };
const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);

async function jupyterInstalled(): Promise<boolean> {
  try {
    return (await new Deno.Command("jupyter", {
      args: ["nbconvert", "--version"],
      stdout: "null",
      stderr: "null",
    }).output()).success;
  } catch {
    return false;
  }
}
const haveJupyter = await jupyterInstalled();
/** Shown in the test names, since `deno test --quiet` hides console output around ignored tests. */
const SKIP = haveJupyter ? "" : " — SKIPPED: jupyter nbconvert is not installed (CI installs it)";

Deno.test("notebooks: the four notebooks are committed without outputs, on the Deno kernel, configured from the environment", () => {
  assertEquals(names, ["difference_maps.ipynb", "explore.ipynb", "features_pca.ipynb", "metrics.ipynb"]);
  for (const n of names) {
    const nb = read(path.join(NOTEBOOKS, n));
    assertEquals(nb.metadata.kernelspec?.name, "deno", `${n}: kernel`);
    const code = nb.cells.filter((c) => c.cell_type === "code");
    for (const c of code) {
      assertEquals(c.outputs ?? [], [], `${n}: committed with outputs`);
      assertEquals(c.execution_count ?? null, null, `${n}: committed with an execution count`);
    }
    const settings = text(code[0]);
    for (const v of ["VIDSEG_CONFIG", "VIDSEG_CACHE", "const CONFIG", "const CACHE"]) {
      assert(settings.includes(v), `${n}: the first code cell must set ${v}`);
    }
  }
});

Deno.test({
  name: `notebooks: \`deno task notebooks\` executes every notebook headless against a small cache${SKIP}`,
  ignore: !haveJupyter,
  async fn() {
    const r = await smallRun();
    await withTempDir("notebooks", async (out) => {
      const before = fs.readdirSync(NOTEBOOKS).sort();
      const res = await cli("notebooks.ts", [...r.args, "--results", r.results, "--out", out]);
      assertEquals(res.code, 0, `${res.stdout}\n${res.stderr}`);
      for (const n of names) {
        const file = path.join(out, n);
        assert(fs.existsSync(file), `${n}: no executed copy in ${out}`);
        const outputs = read(file).cells.filter((c) => c.cell_type === "code").flatMap((c) =>
          c.outputs ?? []
        );
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
      }
      // The metrics notebook read the small run's results table, and the rows' per-frame IoU.
      const metrics = JSON.stringify(read(path.join(out, "metrics.ipynb")));
      assert(metrics.includes("small: mIoU and video consistency"), "metrics.csv table missing");
      assert(metrics.includes("per-frame mIoU"), "per-frame IoU table missing");
      assertEquals(fs.readdirSync(NOTEBOOKS).sort(), before, "notebooks/ must not be written to");
    });
  },
});

Deno.test({
  name: `notebooks: a notebook failing on an uncached artifact is reported with the ablate command${SKIP}`,
  ignore: !haveJupyter,
  async fn() {
    const r = await smallRun();
    await withTempDir("notebooks", async (out) => {
      // Without the overrides no artifact of this config is cached.
      const res = await cli("notebooks.ts", argsWithoutOverrides(r, out, "explore"));
      assertEquals(res.code, 1, res.stderr);
      assert(res.stderr.includes("explore FAILED"), res.stderr);
      assert(
        /MissingArtifactError: "\w+" of row \w+, clip \S+ is not in the cache/.test(res.stderr),
        res.stderr,
      );
      assert(res.stderr.includes("deno task ablate"), res.stderr);
    });
  },
});
