/**
 * `deno task figures` end to end on a small cached run (tests/report/small_run.ts), plus the artifact access
 * it is built on: every figure is a valid SVG and a PNG of twice its size that is not blank; missing
 * artifacts are reported with the command that produces them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { assert, assertEquals, assertGreater, assertRejects } from "../assert.ts";
import { argsWithoutOverrides, cli, type SmallRun, smallRun, withTempDir } from "./small_run.ts";
import { FIGURE_NAMES } from "../../pipeline/report/figures.ts";
import {
  blendingPair,
  comparisonRows,
  MissingArtifactError,
  openRun,
} from "../../pipeline/report/artifacts.ts";
import { differenceView, evenFrames, perFrameIoU } from "../../pipeline/report/views.ts";
import { featurePca, featureRowOf } from "../../pipeline/report/feature_pca.ts";

let small: Promise<SmallRun> | null = null;
const run = () => (small ??= smallRun());

/** width/height attributes of the root <svg> element. */
function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg\b[^>]*>/.exec(svg);
  assert(m, "no <svg> element");
  const w = /\bwidth="([\d.]+)"/.exec(m[0]), h = /\bheight="([\d.]+)"/.exec(m[0]);
  assert(w && h, `root <svg> has no width/height: ${m[0].slice(0, 200)}`);
  return { width: Number(w[1]), height: Number(h[1]) };
}

const count = (s: string, needle: string) => s.split(needle).length - 1;

Deno.test("figures: every figure is written as SVG + PNG of the expected size, and is not blank", async () => {
  const r = await run();
  await withTempDir("figures", async (out) => {
    const res = await cli("figures.ts", [...r.args, "--out", out, "--frames", "0,3,7", "--ks", "2,5,10"]);
    assertEquals(res.code, 0, res.stderr);
    const cell = 180, cellH = Math.round((180 * 360) / 480); // default cell width; CamVid frames are 480×360
    for (const name of FIGURE_NAMES) {
      const svgFile = path.join(out, `${name}.svg`), pngFile = path.join(out, `${name}.png`);
      assert(fs.existsSync(svgFile) && fs.existsSync(pngFile), `${name}: missing output`);
      assert(res.stdout.includes(`${name}.svg`), `${name} not reported:\n${res.stdout}`);
      const svg = fs.readFileSync(svgFile, "utf8");
      const size = svgSize(svg);
      const meta = await sharp(pngFile).metadata();
      assertEquals(meta.format, "png");
      // svgToPng renders at 144 dpi = 2× the SVG's CSS pixels.
      assert(
        Math.abs(meta.width! - 2 * size.width) <= 1 && Math.abs(meta.height! - 2 * size.height) <= 1,
        `${name}: PNG ${meta.width}×${meta.height} for SVG ${size.width}×${size.height}`,
      );
      const stats = await sharp(pngFile).stats();
      const spread = Math.max(...stats.channels.slice(0, 3).map((c) => c.stdev));
      assertGreater(spread, 20, `${name}: PNG looks blank (max channel stdev ${spread.toFixed(1)})`);
      // Grid figures: one embedded image per cell, and room for all columns and rows.
      const images = count(svg, "<image ");
      if (name === "qualitative") {
        assertEquals(images, 3 * 4, "3 frames × (frame, baseline, full, GT)");
        assert(
          size.width >= 4 * cell && size.height >= 3 * cellH,
          `qualitative is ${size.width}×${size.height}`,
        );
      } else if (name === "features_pca") {
        assertEquals(images, 3 * 5, "3 frames × (frame, blocks 6, 7, 8, mean)");
        assert(svg.includes("block 6") && svg.includes("mean of 6, 7, 8"));
        assert(size.width >= 5 * cell, `features_pca is ${size.width} wide`);
      } else if (name === "k_effect") {
        assertEquals(images, 2 * 4, "(frame, 3 K) clusters + (GT grid, 3 K) labels");
        for (const k of [2, 5, 10]) assert(svg.includes(`K = ${k}`), `K = ${k} missing`);
        // Captions count the distinct clusters in frame 0: at most K (K-Means fits all frames of the batch).
        const found = [...svg.matchAll(/>(\d+) clusters</g)].map((m) => Number(m[1]));
        assertEquals(found.length, 3, "one cluster count per K");
        found.forEach((n, i) => assert(n >= 1 && n <= [2, 5, 10][i], `K = ${[2, 5, 10][i]}: ${n} clusters`));
        assertGreater(found[2], found[0], "more clusters with a larger K");
      } else if (name === "difference_maps") {
        assertGreater(images, 2 * 2, "frame + ≥1 label + labels, two rows");
        assertEquals(images % 2, 0);
        assert(svg.includes("(row plain)") && svg.includes("(row full)"), "the blending pair of small.yaml");
      } else {
        assert(svg.includes("mIoU"), "ablation chart has an mIoU panel");
      }
    }
  });
});

Deno.test("figures: artifacts missing from the cache are named with the ablate command that produces them", async () => {
  const r = await run();
  await withTempDir("figures", async (out) => {
    // Without the --set overrides the cache keys differ: nothing of this config is cached.
    const res = await cli("figures.ts", argsWithoutOverrides(r, out, "qualitative,k_effect"));
    assertEquals(res.code, 2, res.stderr);
    assert(
      /skipped qualitative: "\w+" of row \w+, clip \S+ is not in the cache/.test(res.stderr),
      res.stderr,
    );
    assert(res.stderr.includes("deno task ablate"), res.stderr);
    assert(res.stderr.includes("skipped k_effect"), res.stderr);
    assertEquals(fs.readdirSync(out), []);
    const bad = await cli("figures.ts", [...r.args, "--out", out, "--frames", "0,99"]);
    assertEquals(bad.code, 2);
    assertEquals(
      bad.stderr.trim(),
      "error: --frames: frame 99 is outside 0..7 (clip val_0016E5_07959 has 8 frames)",
    );
    const unknown = await cli("figures.ts", [...r.args, "--only", "qualitativ"]);
    assertEquals(unknown.code, 2);
    assert(unknown.stderr.startsWith("error: --only: unknown figure"), unknown.stderr);
  });
});

Deno.test("artifacts: openRun plans the config like ablate and loads cached entries only", async () => {
  const r = await run();
  const view = await openRun(r.config, { cache: r.cache, set: r.set });
  assertEquals(view.rows, ["plain", "full"]);
  assertEquals(view.clips, ["val_0016E5_07959"]);
  assertEquals(blendingPair(view), ["plain", "full"]);
  assertEquals(comparisonRows(view), ["plain", "full"]);
  const frames = await view.load("frames", "full", view.clips[0]);
  assertEquals(frames.tensors.frames.shape, [8, 192, 256, 3]);
  const ev = await view.load("evaluate", "full");
  assertEquals((ev.json.metrics as { frames: number }).frames, 8);
  // Another K is another kmeans key: not cached, and load() must not compute it.
  const k3 = await view.withSet(["kmeans.k=3"]); // no test computes K = 3
  assert(!k3.has("kmeans", "full", view.clips[0]));
  await assertRejects(
    () => k3.load("kmeans", "full", view.clips[0]),
    MissingArtifactError,
    "--set kmeans.k=3",
  );
  assert(!k3.has("kmeans", "full", view.clips[0]), "load() must not compute");
  assert(k3.has("features", "full", view.clips[0]), "features do not depend on K: shared entry");
  const uncached = await openRun(r.config, {
    cache: r.cache,
    set: r.set.filter((s) => !s.startsWith("batch_size")),
  });
  await assertRejects(
    () => uncached.load("features", "full", view.clips[0]),
    MissingArtifactError,
    "is not in the cache",
  );
  await assertRejects(
    () => openRun(r.config, { cache: path.join(r.cache, "nope") }),
    MissingArtifactError,
    "cache directory not found",
  );
});

Deno.test("views: difference maps reproduce the labels stage; PCA and per-frame IoU are well-formed", async () => {
  const r = await run();
  const view = await openRun(r.config, { cache: r.cache, set: r.set });
  const clip = view.clips[0];
  for (const row of view.rows) {
    const v = await differenceView(view, row, clip, 5);
    const s = view.param(row, "modulation.filter_strength") as number;
    // The labels stage applies the row's filter strength: the recomputation with it must match exactly.
    const mine = s === 1 ? v.unfiltered.data : v.filtered.data;
    let diff = 0;
    for (let i = 0; i < v.final.length; i++) if (mine[i] !== v.final[i]) diff++;
    assertEquals(diff, 0, `row ${row}: ${diff} pixels differ from the labels stage`);
    assertEquals(v.diffs.length, v.labels.length);
    for (const l of v.labels) {
      const zero = v.diffs[v.labels.indexOf(l)].data.every((x) => x === 0);
      if (!v.present.includes(l)) assert(zero, `absent label ${l} has a non-zero difference map`);
    }
  }
  const pca = await featurePca(view, "full", clip, [0, 4, 7]);
  assertEquals(pca.panels.map((p) => p.name), ["block 6", "block 7", "block 8", "mean of 6, 7, 8"]);
  for (const p of pca.panels) {
    assertEquals(p.images.map((im) => im.shape), [[12, 16, 3], [12, 16, 3], [12, 16, 3]]);
    assert(p.explained[0] >= p.explained[1] && p.explained[1] >= p.explained[2], `${p.name}: ${p.explained}`);
    assert(p.explained.reduce((a, b) => a + b, 0) <= 1 + 1e-9);
  }
  const ious = await perFrameIoU(view, "full", clip);
  assertEquals(ious.map((x) => x.frame), [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const x of ious) assert(x.iou !== null && x.iou >= 0 && x.iou <= 100, JSON.stringify(x));
});

Deno.test("featureRowOf / evenFrames: batch-stacked rows and frame spreading", () => {
  // planBatches(10, 4) = [0,4), [4,8), [6,10): frame 7 is last seen in the third batch, row 4 + 4 + 1.
  const batches: [number, number][] = [[0, 4], [4, 8], [6, 10]];
  assertEquals(featureRowOf(batches, 7), 9);
  assertEquals(featureRowOf(batches, 5), 5);
  assertEquals(featureRowOf(batches, 0), 0);
  assertEquals(featureRowOf(undefined, 6), 6);
  assertEquals(evenFrames(14, 4), [0, 4, 9, 13]);
  assertEquals(evenFrames(3, 4), [0, 1, 2]);
  assertEquals(evenFrames(5, 1), [0]);
});
