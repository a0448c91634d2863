/**
 * Inputs are known by their content: two different videos with the same file name, run through one cache and
 * one output root, give two decodes and two different label sets (never the first one's frames reused), and
 * the first video again is fully cached with byte-identical labels. A truncated video is accepted only with
 * --allow-partial, which says how many frames it kept.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertNotEquals } from "../assert.ts";
import { cliEnv, runCli, SEGMENT, tempDir } from "../reliability/helpers.ts";
import { type Ctx, makeMp4, segmentArgs } from "../reliability/bad_cases.ts";
import { makeWeights } from "../reliability/helpers.ts";

/** Label PNG bytes of a segment output folder, by file name. */
function labels(out: string): Map<string, string> {
  const dir = path.join(out, "labels");
  return new Map(
    fs.readdirSync(dir).sort().map((f) => [f, fs.readFileSync(path.join(dir, f)).toString("base64")]),
  );
}

function ctx(dir: string): Ctx {
  return {
    dir,
    camvid: "",
    frames: [],
    weights: makeWeights(dir),
    cache: path.join(dir, "cache"),
    results: path.join(dir, "results"),
    config: "",
  };
}

Deno.test({
  name: "identity: two videos named clip.mp4 through one cache and output root are never confused",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("identity");
    try {
      const c = ctx(dir);
      const a = await makeMp4(c, path.join("A", "clip.mp4"));
      const b = await makeMp4(c, path.join("B", "clip.mp4"), true); // the same frames mirrored
      const env = cliEnv(path.join(dir, "graphs"));
      const out = path.join(c.results, "segment"); // one output folder for both, as `results/segment/clip`
      const runA = await runCli(SEGMENT, segmentArgs(c, a).args, env);
      assertEquals(runA.code, 0, runA.stderr);
      const labelsA = labels(out);
      assertEquals(labelsA.size, 3); // dataset.max_frames=3 of 4 decoded frames

      const runB = await runCli(SEGMENT, segmentArgs(c, b).args, env);
      assertEquals(runB.code, 0, runB.stderr);
      assert(/segment: [1-9]\d* run/.test(runB.stderr), `B must be computed, not reused: ${runB.stderr}`);
      const labelsB = labels(out);
      assertEquals([...labelsB.keys()], [...labelsA.keys()]);
      assertNotEquals([...labelsB.values()], [...labelsA.values()], "B's labels are not A's");
      const decoded = fs.readdirSync(path.join(c.cache, "videos")).filter((d) => !d.startsWith("."));
      assertEquals(decoded.length, 2, decoded.join(", "));
      assert(decoded.every((d) => d.startsWith("clip-")), decoded.join(", "));

      const againA = await runCli(SEGMENT, segmentArgs(c, a).args, env);
      assertEquals(againA.code, 0, againA.stderr);
      assert(/segment: 0 run, \d+ cached/.test(againA.stderr), againA.stderr);
      assertEquals(labels(out), labelsA);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "identity: a truncated video is an error, and with --allow-partial its decodable frames are used",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("partial");
    try {
      const c = ctx(dir);
      const mp4 = await makeMp4(c);
      const bytes = fs.readFileSync(mp4);
      fs.writeFileSync(mp4, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
      const env = cliEnv(path.join(dir, "graphs"));
      const args = segmentArgs(c, mp4).args;
      const strict = await runCli(SEGMENT, args, env);
      assertEquals(strict.code, 2, strict.stderr);
      const m = /^error: .*clip\.mp4: decodes to (\d) of the 4 frames its container declares/.exec(
        strict.stderr,
      );
      assert(m && Number(m[1]) < 4, strict.stderr);
      assertEquals(strict.stderr.trim().split("\n").length, 1, strict.stderr);
      assert(!fs.existsSync(c.results), "nothing written");

      const partial = await runCli(SEGMENT, [...args, "--allow-partial"], env);
      assertEquals(partial.code, 0, partial.stderr);
      assert(
        partial.stderr.includes(`note: ${mp4}: using the ${m[1]} decodable frame(s) of 4 declared`),
        partial.stderr,
      );
      assertEquals(labels(path.join(c.results, "segment")).size, Number(m[1]));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
