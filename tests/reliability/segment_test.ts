/**
 * `deno task segment INPUT` end to end (the CLI as a subprocess, conformance model, 64×64 working size):
 * a folder of 4 swan frames → one palette PNG per frame at the frames' size, a 4-page overlay.gif and a
 * legend.png, and a second run reuses the cache; and the one-line error when a video is given but ffmpeg is not on
 * PATH (a video decoded with ffmpeg: tests/system/video_test.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { cliEnv, runCli, SEGMENT, tempDir } from "./helpers.ts";
import { checkOutputs, segmentArgs, swanFolder } from "./segment_helpers.ts";

Deno.test({
  name: "segment: a folder of frames → palette PNGs, overlay.gif, legend.png; a re-run is fully cached",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("segment");
    try {
      const frames = swanFolder(dir, 4);
      const env = cliEnv(path.join(dir, "graphs"));
      const out = path.join(dir, "out"), cache = path.join(dir, "cache");
      const r = await runCli(SEGMENT, segmentArgs(frames, out, cache), env);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stdout.includes(`results: ${out}/labels/*.png (4 frames`), r.stdout);
      await checkOutputs(out, 4, 854, 480);
      const again = await runCli(SEGMENT, segmentArgs(frames, out, cache), env);
      assertEquals(again.code, 0, again.stderr);
      assert(/segment: 0 run, \d+ cached/.test(again.stderr), again.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "segment: a video file without ffmpeg on PATH is one clear error line",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("segment-noffmpeg");
    try {
      const video = path.join(dir, "clip.mp4");
      fs.writeFileSync(video, new Uint8Array(64)); // never read: the ffmpeg check comes first
      const out = path.join(dir, "out");
      const env = { ...cliEnv(path.join(dir, "graphs")), PATH: path.join(dir, "empty-path") };
      const r = await runCli(SEGMENT, segmentArgs(video, out, path.join(dir, "cache")), env, {
        clearEnv: true,
      });
      assertEquals(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assert(lines[0].startsWith(`error: ${video}: decoding a video file needs ffmpeg`), lines[0]);
      assert(lines[0].includes("or pass a folder of frames"), lines[0]);
      assert(!fs.existsSync(path.join(out, "labels")), "no results");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
