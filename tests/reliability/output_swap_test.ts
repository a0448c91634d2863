/**
 * Outputs are written whole or not at all: a segment re-run with fewer frames into the same --out leaves
 * exactly its own label maps (none of the previous run's), a failed run leaves the previous folder
 * byte-identical, and an ablate results folder with a stray file (even where a row's folder goes) is replaced
 * by exactly this run's files. No staging folder stays beside the target.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  ABLATE,
  cliEnv,
  listFiles,
  makeCamvid,
  makeWeights,
  runCli,
  SEGMENT,
  tempDir,
  tinyConfig,
} from "./helpers.ts";
import { type Ctx, segmentArgs, swanFrames } from "./bad_cases.ts";

/** Every file under `dir` with its bytes (base64), for before/after comparisons. */
function snapshot(dir: string): Map<string, string> {
  return new Map(listFiles(dir).map((f) => [f, fs.readFileSync(path.join(dir, f)).toString("base64")]));
}

Deno.test({
  name: "outputs: a re-run replaces the folder whole; a failed run leaves the previous one intact",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("swap");
    try {
      const c: Ctx = {
        dir,
        camvid: "",
        frames: [],
        weights: makeWeights(dir),
        cache: path.join(dir, "cache"),
        results: path.join(dir, "results"),
        config: "",
      };
      const env = cliEnv(path.join(dir, "graphs"));
      const out = path.join(c.results, "segment");
      const frames = swanFrames(c, 3);
      const first = await runCli(SEGMENT, segmentArgs(c, frames).args, env);
      assertEquals(first.code, 0, first.stderr);
      assertEquals(fs.readdirSync(path.join(out, "labels")).length, 3);

      // Fewer frames, into the same folder: only this run's two label maps remain.
      fs.rmSync(path.join(frames, "00002.jpg"));
      const second = await runCli(SEGMENT, segmentArgs(c, frames).args, env);
      assertEquals(second.code, 0, second.stderr);
      assertEquals(fs.readdirSync(path.join(out, "labels")).sort(), ["00000.png", "00001.png"]);
      assertEquals(fs.readdirSync(c.results), ["segment"], "no staging folder beside the output");

      // A run that fails leaves the previous output exactly as it was.
      const before = snapshot(out);
      const args = segmentArgs(c, frames).args;
      args[args.indexOf("--k") + 1] = "40"; // 2 frames × 16 cells < 40
      const failed = await runCli(SEGMENT, args, env);
      assertEquals(failed.code, 2, failed.stderr);
      assert(
        failed.stderr.startsWith("error: kmeans.k: 40 is more than the 32 feature cells"),
        failed.stderr,
      );
      assertEquals(snapshot(out), before);
      assertEquals(fs.readdirSync(c.results), ["segment"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "outputs: ablate replaces a results folder holding stray files with exactly this run's files",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("swap-ablate");
    try {
      const { root: camvid } = makeCamvid(dir, 2);
      const config = path.join(dir, "tiny.yaml");
      fs.writeFileSync(config, tinyConfig({ weights: makeWeights(dir), camvid, maxFrames: 2 }));
      const results = path.join(dir, "results");
      fs.mkdirSync(path.join(results, "tiny"), { recursive: true });
      fs.writeFileSync(path.join(results, "tiny", "full"), "a file where the row's folder goes");
      fs.writeFileSync(path.join(results, "tiny", "stale.csv"), "from another run");
      const r = await runCli(
        ABLATE,
        [config, "--cache", path.join(dir, "cache"), "--results", results],
        cliEnv(path.join(dir, "graphs")),
      );
      assertEquals(r.code, 0, r.stderr);
      const files = listFiles(path.join(results, "tiny"));
      assert(!files.includes("stale.csv") && files.includes("metrics.csv"), files.join(", "));
      const labels = files.filter((f) => f.startsWith(`full${path.sep}`));
      assertEquals(labels.length, 2, files.join(", "));
      assertEquals(fs.readdirSync(results), ["tiny"], "no staging folder beside the results");
      assert(r.stdout.includes(`results: ${path.join(results, "tiny", "metrics.md")}`), r.stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
