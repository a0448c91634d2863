/**
 * Bad-input corpus: one small case per user mistake, each run through the real CLI (`ablate` or `segment`) as
 * a subprocess. Every case must exit 2 with exactly one stderr line `error: ...` that names the culprit (file
 * or key) and what was expected, write no results, and leave no cache entry of the stage that failed.
 * Inputs are built at test time in temp dirs from data/camvid frames and the conformance weights (copied and
 * damaged), so no binary fixture is committed.
 */
import { assertEquals } from "../assert.ts";
import { CASES } from "./bad_cases.ts";
import { runCases } from "./bad_run.ts";

const cases = CASES.filter((k) => !k.video); // the video cases need ffmpeg: tests/system/video_test.ts

Deno.test({
  name: `bad inputs: ${cases.length} cases each exit 2 with one clear error line and write nothing`,
  sanitizeResources: false,
  async fn() {
    const failures = await runCases(cases);
    assertEquals(failures, [], failures.join("\n"));
  },
});
