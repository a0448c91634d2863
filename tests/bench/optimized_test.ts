/**
 * The optimizations of the `optimized` modulation schedule give the reference schedule's results:
 * - prefix reuse: the UNet split at the input of up position 7 — suffix(prefix(x)) equals the full graph, with
 *   and without modulation/injection (conformance UNet, random weights: the equalities are what matter);
 * - the optimized schedule in any grouping (fixed 2 or 14 samples, the memory-budget size) with or without prefix
 *   reuse gives the reference schedule's difference maps and label maps on a short synthetic clip.
 * Equality is measured exactly (count of equal bytes): every variation runs the same per-sample arithmetic, and
 * onnxruntime's CPU kernels compute each batch row independently, so bit-identical results are expected; the
 * assertions allow 0.1% of pixels to differ in case a kernel's blocking depends on the batch size.
 */
import { assert, assertEquals } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { UNet } from "../../pipeline/backbone/sd/unet.ts";
import { invertStage } from "../../pipeline/stages/invert.ts";
import { modulateClip, type OptimizedOptions } from "../../pipeline/stages/modulate.ts";
import { INJECT_POSITIONS } from "../../pipeline/backbone/sd/backbone.ts";
import { sdModulateParams } from "../stages/params.ts";
import { labelsStage } from "../../pipeline/stages/labels.ts";
import type { Artifacts, StageContext } from "../../pipeline/dag/stage.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import { f32, i32, maxAbsDiff, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";
import { syntheticVideo } from "../../pipeline/data/synthetic.ts";
import { resizeBicubicPil } from "../../pipeline/tensor/ops.ts";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const CONF = `${FIXTURES}/conformance`;
/** The set's UNet config: context width and the grid of each up-path position follow from it. */
const UCFG = JSON.parse(fs.readFileSync(`${CONF}/unet/config.json`, "utf8"));
const LEVELS = UCFG.block_out_channels.length, PER = UCFG.layers_per_block + 1;
/** Downsampling factor of up-path position p's grid relative to the latent. */
const gridFactor = (p: number) => 2 ** (LEVELS - 1 - Math.floor(p / PER));
const CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-opt-graphs-"));
globalThis.addEventListener("unload", () => fs.rmSync(CACHE, { recursive: true, force: true }));
Deno.env.set("VIDSEG_GRAPH_CACHE", CACHE);
const ctx: StageContext = { progress() {}, log() {} };

/** Deterministic pseudo-random values in [−1, 1). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Fraction of equal elements. */
function equalFraction(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

Deno.test("prefix split at position 7: suffix(prefix(x)) = full(x), plain and modulated+injected", async () => {
  const B = 4, h = 16, w = 24;
  const sample = f32([B, 4, h, w], rand(B * 4 * h * w, 1));
  const D = UCFG.cross_attention_dim, context = f32([B, 77, D], rand(B * 77 * D, 2));
  const timestep = 119;
  const injectTaps = INJECT_POSITIONS.flatMap((i) =>
    ["attn1_q", "attn1_k", "attn2_out"].map((k) => `up.pos${String(i).padStart(2, "0")}.${k}`)
  );
  const rec = await UNet.load(CONF, { cacheDir: CACHE, taps: injectTaps, exposePrefixAt: 7 });
  const plain = await UNet.load(CONF, { cacheDir: CACHE, taps: injectTaps });
  const r = await rec.run({ sample, timestep, context });
  // Skips not yet consumed on entering position 7: conv_in, layers_per_block per level and one per
  // downsampler (1 + L·lpb + L − 1 in all), minus the 7 positions before it.
  const skips = 1 + LEVELS * UCFG.layers_per_block + LEVELS - 1 - 7;
  assertEquals(
    Object.keys(r.prefix!).sort(),
    ["prefix.hidden", ...Array.from({ length: skips }, (_, i) => `prefix.skip${i}`)].sort(),
  );
  // Exposing the prefix does not change the pass itself.
  const rp = await plain.run({ sample, timestep, context });
  assertEquals(maxAbsDiff(r.eps!, rp.eps!), 0);
  const suffix = await UNet.load(CONF, { cacheDir: CACHE, resumeAt: 7 });
  const rs = await suffix.run({ timestep, context, prefix: r.prefix });
  assertEquals(maxAbsDiff(rs.eps!, r.eps!), 0, "plain suffix");
  // Modulated + injected (the first modulated step): full variant from x vs suffix variant from the prefix.
  const tokens7 = (h / gridFactor(7)) * (w / gridFactor(7));
  const mod = f32([B, tokens7, 1], rand(B * tokens7, 3).map((v) => (v > 0 ? 5 : 0)));
  const modFull = await UNet.load(CONF, {
    cacheDir: CACHE,
    modulationPosition: 7,
    injectPositions: INJECT_POSITIONS,
  });
  const modSuffix = await UNet.load(CONF, {
    cacheDir: CACHE,
    modulationPosition: 7,
    injectPositions: INJECT_POSITIONS.filter((p) => p >= 7),
    resumeAt: 7,
  });
  const a = await modFull.run({ sample, timestep, context, modulation: mod, injected: r.taps });
  const b = await modSuffix.run({ timestep, context, modulation: mod, injected: r.taps, prefix: r.prefix });
  const d = maxAbsDiff(a.eps!, b.eps!);
  console.log(`  modulated+injected suffix vs full: max abs diff ${d}`);
  // Injection at positions 3..6 re-feeds exactly the values the prefix computed, so the prefix is the same.
  assertEquals(d, 0, "modulated suffix");
  assert(maxAbsDiff(a.eps!, r.eps!) > 1e-3, "the modulation had no effect (test would be vacuous)");
  // A suffix cannot be asked for anything computed before its start.
  let threw = false;
  try {
    await UNet.load(CONF, { cacheDir: CACHE, resumeAt: 7, injectPositions: [3] });
  } catch (e) {
    threw = /before the resumed position 7/.test(String(e));
  }
  assert(threw, "injecting position 3 into a suffix from 7 must be refused");
  for (const u of [rec, plain, suffix, modFull, modSuffix]) await u.release();
});

// A short clip: 4 synthetic frames at 128×128 (grid 8×8), coarse maps from the synthetic GT.
const F = 4, H = 128, W = 128, gh = 8, gw = 8;

function clip(): { frames: Artifacts; knn: Artifacts } {
  const v = syntheticVideo({ frames: F, height: 96, width: 144, seed: 3 });
  const frames = u8([F, H, W, 3]);
  for (let f = 0; f < F; f++) {
    const one = u8([96, 144, 3], v.frames.data.subarray(f * 96 * 144 * 3, (f + 1) * 96 * 144 * 3));
    frames.data.set(resizeBicubicPil(one, H, W).data, f * H * W * 3);
  }
  // Coarse labels: the GT class at each grid cell's centre (nearest), so labels move with the objects.
  const coarse = i32([F, gh, gw]);
  const present = new Set<number>();
  for (let f = 0; f < F; f++) {
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        const sy = Math.floor(((y + 0.5) * 96) / gh), sx = Math.floor(((x + 0.5) * 144) / gw);
        const c = v.gt.data[(f * 96 + sy) * 144 + sx];
        coarse.data[(f * gh + y) * gw + x] = c;
        present.add(c);
      }
    }
  }
  const labels = [...present].sort((a, b) => a - b);
  const batches = { ...coarse, shape: [1, F, gh, gw] };
  return {
    frames: {
      tensors: { frames },
      json: { size0: [H, W], size: [H, W], frames: ["0", "1", "2", "3"], palette: [] },
    },
    knn: { tensors: { coarse, coarse_batches: batches }, json: { labels } },
  };
}

const params = () => sdModulateParams({ weights: CONF, batch: F });

Deno.test("optimized schedule (prefix reuse, any grouping) = reference schedule: diff maps and labels", async () => {
  const { frames, knn } = clip();
  const p = params();
  const invert = await invertStage.run({ frames }, p, ctx);
  const inputs = { frames, invert, knn };
  const labelsOf = async (mod: Artifacts) =>
    (await labelsStage.run({ frames, knn, modulate: mod }, p, ctx)).tensors.labels as Tensor<"U8">;
  const ref = await modulateClip(inputs, p, ctx, null);
  const refLabels = await labelsOf(ref);
  const refDiff = ref.tensors.diff as Tensor<"U8">;
  assert(refDiff.data.some((v) => v > 0), "reference difference maps are all zero (vacuous test)");
  const variants: [string, OptimizedOptions][] = [
    ["groups of 14, no prefix reuse", {
      groupSamples: 14,
      microBatch: 28,
      reusePrefix: false,
      skipRepeats: false,
    }],
    ["groups of 2, prefix reuse", { groupSamples: 2, microBatch: 4, reusePrefix: true, skipRepeats: true }],
    ["one group, prefix reuse", {
      groupSamples: 1000,
      microBatch: 2000,
      reusePrefix: true,
      skipRepeats: true,
    }],
  ];
  for (const [name, opt] of variants) {
    evaluations.reset();
    const out = await modulateClip(inputs, p, ctx, opt);
    const diffEq = equalFraction(out.tensors.diff.data as Uint8Array, refDiff.data);
    const labEq = equalFraction((await labelsOf(out)).data, refLabels.data);
    console.log(
      `  ${name}: diff maps ${(100 * diffEq).toFixed(4)}% equal, labels ${(100 * labEq).toFixed(4)}% equal`,
    );
    assert(diffEq > 0.999 && labEq > 0.999, `${name}: diff ${diffEq}, labels ${labEq}`);
    const snap = evaluations.snapshot();
    const resumed = Object.entries(snap).filter(([k]) => k.includes("from7")).reduce(
      (a, [, v]) => a + v.samples,
      0,
    );
    if (opt.reusePrefix) assert(resumed > 0, `${name}: the suffix variant was never used`);
    else assertEquals(resumed, 0);
  }
});
