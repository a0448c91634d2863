/**
 * The notebooks (notebooks/*.ipynb): committed without outputs, configured from the environment, and
 * executed headless by `deno task notebooks` against the small cached run of tests/report/small_run.ts without
 * error outputs and with figures. The engine is the one `deno task notebooks` picks: jupyter nbconvert with
 * the Deno kernel when both are installed, else the cells as one `deno run` module (nothing to skip on a
 * machine with Deno only). tests/system/notebooks_nbconvert_test.ts always uses nbconvert.
 */
import * as path from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { jupyterMissing } from "../pipeline/cli/notebooks.ts";
import {
  cellText,
  checkMissingArtifactReported,
  checkNotebooksExecute,
  NOTEBOOK_NAMES,
  NOTEBOOKS,
  readNotebook,
} from "./report/notebook_checks.ts";

const engine = (await jupyterMissing()) ? "script" : "nbconvert";

Deno.test("notebooks: the four notebooks are committed without outputs, on the Deno kernel, configured from the environment", () => {
  assertEquals(NOTEBOOK_NAMES, [
    "difference_maps.ipynb",
    "explore.ipynb",
    "features_pca.ipynb",
    "metrics.ipynb",
  ]);
  for (const n of NOTEBOOK_NAMES) {
    const nb = readNotebook(path.join(NOTEBOOKS, n));
    assertEquals(nb.metadata.kernelspec?.name, "deno", `${n}: kernel`);
    const code = nb.cells.filter((c) => c.cell_type === "code");
    for (const c of code) {
      assertEquals(c.outputs ?? [], [], `${n}: committed with outputs`);
      assertEquals(c.execution_count ?? null, null, `${n}: committed with an execution count`);
    }
    const settings = cellText(code[0]);
    for (const v of ["VIDSEG_CONFIG", "VIDSEG_CACHE", "const CONFIG", "const CACHE"]) {
      assert(settings.includes(v), `${n}: the first code cell must set ${v}`);
    }
  }
});

Deno.test(`notebooks: \`deno task notebooks\` executes every notebook headless against a small cache (${engine})`, () =>
  checkNotebooksExecute(engine));

Deno.test(`notebooks: a cache without the run is one error line naming the ablate command (${engine})`, () =>
  checkMissingArtifactReported(engine));
