/**
 * Video inputs end to end (needs ffmpeg): `segment` on an MP4, the bad-input cases with videos (truncated, cut
 * before its first frame, random bytes) and the generated video mutants.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assertEquals } from "../assert.ts";
import { cliEnv, runCli, SEGMENT, tempDir } from "../reliability/helpers.ts";
import { CASES } from "../reliability/bad_cases.ts";
import { runCases } from "../reliability/bad_run.ts";
import { checkMutants } from "../reliability/mutations.ts";
import { checkOutputs, hasFfmpeg, makeMp4, segmentArgs, swanFolder } from "../reliability/segment_helpers.ts";

Deno.test("video tests: ffmpeg is installed (apt-get install ffmpeg)", async () => {
  assertEquals(await hasFfmpeg(), true);
});

Deno.test({
  name: "segment: a video file (decoded with ffmpeg)",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("segment-video");
    try {
      const mp4 = path.join(dir, "swan.mp4");
      await makeMp4(swanFolder(dir, 4), mp4);
      const out = path.join(dir, "out");
      const r = await runCli(
        SEGMENT,
        segmentArgs(mp4, out, path.join(dir, "cache")),
        cliEnv(path.join(dir, "graphs")),
      );
      assertEquals(r.code, 0, r.stderr);
      await checkOutputs(out, 4, 160, 96);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});

const videoCases = CASES.filter((k) => k.video);

Deno.test({
  name:
    `bad inputs: ${videoCases.length} video cases each exit 2 with one clear error line and write nothing`,
  sanitizeResources: false,
  async fn() {
    const failures = await runCases(videoCases);
    assertEquals(failures, [], failures.join("\n"));
  },
});

Deno.test({
  name: "mutations: every mutant of a valid MP4 gives a complete output or one error line and no change",
  sanitizeResources: false,
  fn: () => checkMutants("video"),
});
