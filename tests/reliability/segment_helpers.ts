/** Helpers of the segment CLI tests (tests/reliability/segment_test.ts, tests/system/video_test.ts). */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { DATA } from "../paths.ts";
import { CONFORMANCE } from "./helpers.ts";

export const SWAN = path.join(DATA, "swan", "images");

/** segment's arguments: tiny model, 64×64, K=3, a 6-step sampler. */
export function segmentArgs(input: string, out: string, cache: string): string[] {
  return [
    input,
    ...["--weights", CONFORMANCE, "--resolution", "64x64", "--k", "3", "--out", out, "--cache", cache],
    ...["sampler.steps=6", "sampler.t_m=3", "sampler.t_f=5", "kmeans.n_init=1", "batch_size=4"]
      .flatMap((s) => ["--set", s]),
  ];
}

/** Copy the first n swan frames into a new folder. */
export function swanFolder(dir: string, n: number): string {
  const out = path.join(dir, "swan4");
  fs.mkdirSync(out);
  for (const f of fs.readdirSync(SWAN).sort().slice(0, n)) {
    fs.copyFileSync(path.join(SWAN, f), path.join(out, f));
  }
  return out;
}

/** Check a segment output folder: n palette PNGs of w×h, an n-page GIF, a legend. */
export async function checkOutputs(out: string, n: number, w: number, h: number): Promise<void> {
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

export async function hasFfmpeg(): Promise<boolean> {
  try {
    return (await new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** A 4-frame 160×96 mp4 of the swan frames. */
export async function makeMp4(frames: string, file: string): Promise<void> {
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
