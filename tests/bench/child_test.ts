/**
 * One instrumented pipeline run (the bench's child) on the conformance model and 3 CamVid frames at 128×128:
 * per-stage frames, the evaluation counts the reference schedule implies, FLOP weights from the MAC counts,
 * VAE decodes per modulated sample, peak RSS, metrics; and the report tables derived from it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertAlmostEquals, assertEquals, assertGreater } from "../assert.ts";
import { FIXTURES, ROOT } from "../paths.ts";
import { runChild } from "../../pipeline/bench/child.ts";
import { parseUNetConfig } from "../../pipeline/backbone/sd/config.ts";
import { totalMacs, unetMacs } from "../../pipeline/bench/flops.ts";
import { fullPerFrame, labelAgreement, stageRows, variantRows } from "../../pipeline/bench/report.ts";
import { benchMarkdown } from "../../pipeline/bench/markdown.ts";
import { machineInfo } from "../../pipeline/bench/report.ts";
import { INJECT_POSITIONS } from "../../pipeline/backbone/sd/backbone.ts";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-bench-child-"));
globalThis.addEventListener("unload", () => fs.rmSync(TMP, { recursive: true, force: true }));
Deno.env.set("VIDSEG_GRAPH_CACHE", path.join(TMP, "graphs"));

const CONFIG = `
defaults:
  backbone: {kind: sd, weights: ${FIXTURES}/conformance}
  dataset: {kind: camvid, root: ${ROOT}/data/camvid, clips: [val_0016E5_07959], max_frames: 3}
  resolution: [128, 128]
  kmeans: {k: 3, n_init: 1}
  batch_size: 3
  schedule: reference
rows:
  F: {}
`;

Deno.test("bench child: per-stage accounting of a reference-schedule run", async () => {
  const file = path.join(TMP, "c.yaml");
  fs.writeFileSync(file, CONFIG);
  const r = await runChild({
    config: file,
    set: [],
    cache: path.join(TMP, "cache"),
    out: path.join(TMP, "r.json"),
  });
  assertEquals(JSON.parse(fs.readFileSync(path.join(TMP, "r.json"), "utf8")).summary, r.summary);
  for (const s of ["frames", "invert", "features", "modulate", "labels"]) {
    assertEquals(r.stages[s].frames, 3, s);
  }
  assert(r.metrics.F && r.metrics.F.mIoU !== null, "row F has metrics");
  if (r.peakRss !== null) assertGreater(r.peakRss, 50 * 2 ** 20);
  const l = parseUNetConfig(
    JSON.parse(fs.readFileSync(`${FIXTURES}/conformance/unet/config.json`, "utf8")),
    "c",
  );
  // Latent of the 128×128 frames: the VAE halves the size at each level after the first.
  const vaeLevels = JSON.parse(fs.readFileSync(`${FIXTURES}/conformance/vae/config.json`, "utf8"))
    .block_out_channels.length;
  const lat = 128 / 2 ** (vaeLevels - 1);
  const full = totalMacs(unetMacs(l, lat, lat));
  assertEquals(r.fullMacs[`${lat}×${lat}`], full);
  // features: one batch of 3 frames under CFG (6 rows): steps 22, 23 on the plain UNet, step 24 on the variant
  // truncated after position 8 (the deepest feature tap).
  const fv = r.stages.features.variants;
  assertEquals(Object.keys(fv).filter((n) => n.startsWith("unet")).sort(), ["unet", "unet:truncated:taps3"]);
  assertEquals(fv["unet"].samples, 12);
  assertAlmostEquals(fv["unet"].fullEquivalents, 12, 1e-9);
  assertEquals(fv["unet:truncated:taps3"].samples, 6);
  const trunc = totalMacs(unetMacs(l, lat, lat, { truncateAfter: 8 })) / full;
  assertAlmostEquals(fv["unet:truncated:taps3"].fullEquivalents, 6 * trunc, 1e-9);
  assertAlmostEquals(fullPerFrame(r, "features"), (12 + 6 * trunc) / 3, 1e-9);
  // modulate (reference): per planned batch (N = F = 3 → the batch is planned twice) an unmodulated pass of
  // 18 full-UNet rows, and 2 signs × L labels × 3 frames × 3 steps × 2 rows modulated+injected rows; one decode
  // per modulated sample.
  const mv = r.stages.modulate.variants;
  const rec = Object.entries(mv).find(([n]) => n.startsWith("unet:taps"))!;
  const mod = Object.entries(mv).find(([n]) => n.startsWith("unet:mod7"))!;
  assertEquals(rec[1].samples, 2 * 18);
  assertEquals(mod[1].samples % (2 * 2 * 3 * 3 * 2), 0);
  const L = mod[1].samples / (2 * 2 * 3 * 3 * 2);
  assertGreater(L, 0);
  const inj = totalMacs(unetMacs(l, lat, lat, { injectPositions: INJECT_POSITIONS })) / full;
  assertAlmostEquals(rec[1].fullEquivalents + mod[1].fullEquivalents, 36 + mod[1].samples * inj, 1e-6);
  assertEquals(mv["vae.decode"].samples, mod[1].samples / 6);
  // Report tables.
  const rows = stageRows(r, ["frames", "features", "modulate"], 100);
  assertEquals(rows.map((x) => x.stage), ["frames", "features", "modulate"]);
  assertAlmostEquals(rows[2].vaeDecodesPerFrame!, mv["vae.decode"].samples / 3, 1e-9);
  assertAlmostEquals(rows[2].unetSamplesPerFrame!, (36 + mod[1].samples) / 3, 1e-9);
  const vr = variantRows(r, 100).find((v) => v.variant === mod[0])!;
  assertAlmostEquals(vr.gmacsPerSample!, (inj * full) / 1e9, 1e-12);
  assertAlmostEquals(vr.fractionOfMatmul!, vr.gflops! / 100, 1e-12);
  const md = benchMarkdown({
    created: "now",
    machine: machineInfo(),
    config: "c.yaml",
    set: [],
    quick: false,
    matmul: null,
    full: {
      wallS: 1,
      graphBuildS: 0,
      peakRssMiB: 1,
      stages: rows,
      variants: variantRows(r, 100),
      metrics: r.metrics,
    },
    schedule: null,
    ablate: null,
    rss: null,
    breakdown: null,
    taesd: null,
  });
  assert(md.includes("| modulate |") && md.includes(mod[0]), "markdown lists the stages and variants");
  // Label digests: the optimized schedule on its own cache stores byte-identical label maps; another K does not.
  const again = (name: string, set: string[]) =>
    runChild({
      config: file,
      set,
      cache: path.join(TMP, `cache-${name}`),
      out: path.join(TMP, `${name}.json`),
    });
  const opt = await again("opt", ["schedule=optimized"]);
  assertEquals(r.labelDigests.F.length, 64);
  assertEquals(labelAgreement(r, opt), { equal: ["F"], differ: [] });
  assertEquals(labelAgreement(r, await again("k2", ["kmeans.k=2"])), { equal: [], differ: ["F"] });
});
