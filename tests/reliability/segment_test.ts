/**
 * `deno task segment INPUT` end to end (the CLI as a subprocess, conformance model, 64×64 working size):
 * a folder of 4 swan frames → one palette PNG per frame at the frames' size, a 4-page overlay.gif and a
 * legend.png, and a second run reuses the cache; a tiny mp4 made with ffmpeg (skipped when ffmpeg is missing);
 * and the one-line error when a video is given but ffmpeg is not on PATH.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { DATA } from "../shared.ts";
import { cliEnv, CONFORMANCE, runCli, SEGMENT, tempDir } from "./helpers.ts";

const SWAN = path.join(DATA, "swan", "images");

/** segment's arguments: tiny model, 64×64, K=3, a 6-step sampler. */
function segmentArgs(input: string, out: string, cache: string): string[] {
  return [
    input,
    ...["--weights", CONFORMANCE, "--resolution", "64x64", "--k", "3", "--out", out, "--cache", cache],
    ...["sampler.steps=6", "sampler.t_m=3", "sampler.t_f=5", "kmeans.n_init=1", "batch_size=4"]
      .flatMap((s) => ["--set", s]),
  ];
}

/** Copy the first n swan frames into a new folder. */
function swanFolder(dir: string, n: number): string {
  const out = path.join(dir, "swan4");
  fs.mkdirSync(out);
  for (const f of fs.readdirSync(SWAN).sort().slice(0, n)) {
    fs.copyFileSync(path.join(SWAN, f), path.join(out, f));
  }
  return out;
}

/** Check a segment output folder: n palette PNGs of w×h, an n-page GIF, a legend. */
async function checkOutputs(out: string, n: number, w: number, h: number): Promise<void> {
  const labels = fs.readdirSync(path.join(out, "labels")).sort();
  assertEquals(labels.length, n, labels.join(", "));
  for (const f of labels) {
    const m = await sharp(path.join(out, "labels", f)).metadata();
    assertEquals([m.format, m.width, m.height], ["png", w, h], f);
    // IHDR colour type (byte 25 of the file) 3 = indexed colour.
    assertEquals(fs.readFileSync(path.join(out, "labels", f))[25], 3, `${f} is an indexed (palette) PNG`);
  }
  const gif = await sharp(path.join(out, "overlay.gif"), { pages: -1 }).metadata();
  assertEquals([gif.format, gif.pages, gif.width, gif.pageHeight], ["gif", n, w, h]);
  const legend = await sharp(path.join(out, "legend.png")).metadata();
  assertEquals(legend.format, "png");
  assertGreater(legend.height ?? 0, 20);
}

async function hasFfmpeg(): Promise<boolean> {
  try {
    return (await new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** A 4-frame 160×96 mp4 of the swan frames. */
async function makeMp4(frames: string, file: string): Promise<void> {
  const r = await new Deno.Command("ffmpeg", {
    args: [
      "-v",
      "error",
      "-framerate",
      "4",
      "-i",
      path.join(frames, "%05d.jpg"),
      "-vf",
      "scale=160:96",
      "-pix_fmt",
      "yuv420p",
      file,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
}

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
  name: "segment: a video file (decoded with ffmpeg)",
  sanitizeResources: false,
  async fn() {
    if (!(await hasFfmpeg())) {
      console.log("skipped: ffmpeg is not installed (apt-get install ffmpeg)");
      return;
    }
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
