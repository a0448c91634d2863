/**
 * The notebooks executed by jupyter nbconvert with the Deno kernel (Debian jupyter-nbconvert, jupyter-client,
 * python3-nbclient; `deno jupyter --install`): the same checks as tests/notebooks_test.ts, which runs the
 * notebooks with whatever engine the machine has. Missing Jupyter or kernel is a failure here.
 */
import { checkJupyter } from "../../pipeline/cli/notebooks.ts";
import { checkMissingArtifactReported, checkNotebooksExecute } from "../report/notebook_checks.ts";

Deno.test("system notebooks: jupyter nbconvert and the Deno kernel are installed", () => checkJupyter());

Deno.test("system notebooks: nbconvert executes every notebook against a small cache", () =>
  checkNotebooksExecute("nbconvert"));

Deno.test("system notebooks (nbconvert): a cache without the run is one error line naming the ablate command", () =>
  checkMissingArtifactReported("nbconvert"));
