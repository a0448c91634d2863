/**
 * Stage `modulate` (docs/method.md §8.1–8.5): per batch, the unmodulated pass (recording latents and the attention
 * to inject), then for every label and sign a modulated re-denoising of the frames, decoded to images at the
 * original frame size, and the blurred ± difference map of every (frame, label).
 *
 * Schedules (`schedule`):
 * - `reference`: the reference code's pass structure literally — for sign in (+,−), for each label, every frame
 *   of the batch is re-denoised (frames where the label is absent get an all-zero mask).
 * - `optimized`: only (frame, label) pairs whose mask is non-empty are re-denoised, all signs/labels/frames
 *   batched together. An absent label's difference map is exactly zero in the reference too: with a zero mask
 *   there is no modulation, blending restores the unmodulated latent, and injection makes every later step the
 *   unmodulated one, so I⁺ = I⁻ (see tests/stages/modulate_test.ts). Groups are as large as the memory budget
 *   `modulation.batch_bytes` allows (default {@link DEFAULT_BATCH_BYTES}), and the first modulated step reuses
 *   the unmodulated pass's UNet prefix: its input is x_{t_m} itself, so everything before the modulated block
 *   (up position `modulation.block`) is identical; only the rest of the UNet is run per sample
 *   (tests/bench/optimized_test.ts). A batch the plan repeats is run once (its rerun is identical).
 *   Every difference map it computes is also a shared sample (the runner's sample cache): another instance with the same frames, params and mask — an
 *   ablation row that differs elsewhere — copies it instead of re-denoising.
 *
 * The stored attention of the unmodulated pass (a few MB per batch for the embedded model, ≈1.6 GB/step at SD
 * 2.1 size) stays in memory inside this stage: recomputing the unmodulated pass costs one pass out of
 * 1 + 2·|Labels|, far cheaper than caching gigabytes per batch.
 *
 * Artifacts: tensors `diff` U8 [N, L, H0, W0] (blurred difference maps, before normalisation), json
 * {labels: number[]}.
 * @module
 */
import { type Artifacts, rowsOf, shapeOf, type Stage, type StageContext, tensorOutput } from "../dag/stage.ts";
import type { VidsegConfig } from "../config/schema.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";
import type { BatchRange } from "../seg/video.ts";
import { legacyDdpmSchedule } from "../backbone/sampler/schedule.ts";
import { addNoise } from "../backbone/sampler/noise.ts";
import { tapName } from "../backbone/models/unet.ts";
import { resizeBilinearCv } from "../tensor/ops.ts";
import { differenceMap } from "../seg/labels.ts";
import {
  type BackboneParams,
  condOf,
  MICRO_BATCH,
  unetLayoutOf,
  unetRowBytes,
  vaeOf,
  VariantRunner,
} from "./backbone.ts";
import { type ModSample, modulatedPass, type ModulationSettings, type PassSettings, unmodulatedPass } from "./passes.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import { images01ToFrames } from "./frames_util.ts";
import { svdModulateClip } from "./svd_stages.ts";

type P = Record<string, unknown>;

/**
 * Settings group `modulation` (the config schema's type), plus the optimized schedule's memory budget of one
 * group in bytes (not a config key yet; null/absent: {@link DEFAULT_BATCH_BYTES}).
 */
export type ModulationParams = VidsegConfig["modulation"] & { batch_bytes?: number | null };

/** Decoder positions whose attention is injected (every up-path position with a transformer, 3..11). */
export const INJECT_POSITIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Default memory budget of one optimized group of modulated samples (bytes). */
export const DEFAULT_BATCH_BYTES = 2 ** 31;

/** Knobs of the optimized schedule (the stage derives them from the config; the bench varies them). */
export interface OptimizedOptions {
  /** Samples per modulated group (each sample is 2 UNet rows under CFG). */
  groupSamples: number;
  /** UNet rows per backend run. */
  microBatch: number;
  /** Resume the first modulated step from the unmodulated pass's prefix. */
  reusePrefix: boolean;
  /**
   * Run a batch the plan repeats (the reference reruns the last window when N is a multiple of the batch size,
   * docs/method.md §13.14) only once: the rerun has the same frames, noise and masks, so its output is identical.
   */
  skipRepeats: boolean;
}

/**
 * Group size and backend batch from a memory budget: half of it for the group's own tensors (injected attention
 * of one step, prefix, decoded images), half for one backend run's activations. On CPU the backend batch is also
 * capped at the runner's {@link MICRO_BATCH}: larger onnxruntime batches are not faster there (cache-bound), and
 * only cost memory; on CUDA the budget alone decides.
 */
export function optimizedOptions(
  b: BackboneParams,
  latent: [number, number],
  image: [number, number],
  injectPositions: readonly number[],
  splitAt: number,
  budget: number,
): OptimizedOptions {
  const r = unetRowBytes(unetLayoutOf(b), latent[0], latent[1], injectPositions, splitAt);
  const perSample = 2 * (r.injected + r.prefix) + image[0] * image[1] * 3 * 5; // decoded F32 + U8 copy
  return {
    groupSamples: Math.max(1, Math.floor(budget / 2 / perSample)),
    microBatch: Math.min(
      Math.max(2, Math.floor(budget / 2 / r.activations)),
      b.provider === "cuda" ? Infinity : MICRO_BATCH,
    ),
    reusePrefix: true,
    skipRepeats: true,
  };
}

export const modulateStage: Stage<P> = {
  name: "modulate",
  version: 1,
  params: ["backbone", "sampler", "batch_size", "dedupe_last_batch", "modulation", "schedule"],
  upstream: ["frames", "invert", "knn"],
  run(inputs, p, ctx): Promise<Artifacts> {
    // SVD: a batch is one video (temporal attention), with its own passes and conditioning (svd_stages.ts).
    if ((p.backbone as BackboneParams).kind === "svd") return svdModulateClip(inputs, p, ctx);
    if (p.schedule === "reference") return modulateClip(inputs, p, ctx, null);
    const m = p.modulation as ModulationParams;
    const z0 = shapeOf(inputs.invert, "z0")!.shape;
    const frames = inputs.frames.json.size as [number, number] | undefined;
    const image: [number, number] = frames ?? [z0[2] * 8, z0[3] * 8];
    const opt = optimizedOptions(
      p.backbone as BackboneParams,
      [z0[2], z0[3]],
      image,
      m.injection ? INJECT_POSITIONS : [],
      m.block,
      m.batch_bytes ?? DEFAULT_BATCH_BYTES,
    );
    return modulateClip(inputs, p, ctx, opt);
  },
};

/**
 * The stage's work on one clip: the reference schedule (`opt` null) or the optimized one with the given knobs
 * (exported so the bench and tests can vary them; the stage derives them from the memory budget).
 */
export async function modulateClip(
  inputs: Record<string, Artifacts>,
  p: P,
  ctx: StageContext,
  opt: OptimizedOptions | null,
): Promise<Artifacts> {
  const z0Shape = shapeOf(inputs.invert, "z0")!.shape; // [N, 4, h, w]; read batch by batch
  const eps = inputs.invert.tensors.eps as Tensor<"F32">;
  // Per distinct batch, the (CBR-refined when on) coarse maps: the masks of that batch's passes.
  const coarse = inputs.knn.tensors.coarse_batches as Tensor<"I32">; // [B, F, h, w]
  const labels = inputs.knn.json.labels as number[];
  const [H0, W0] = inputs.frames.json.size0 as [number, number];
  const N = z0Shape[0], gh = coarse.shape[2], gw = coarse.shape[3], tokens = gh * gw;
  const s = p.sampler as { steps: number; t_m: number; t_f: number; guidance: number };
  const m = p.modulation as ModulationParams;
  const b = p.backbone as BackboneParams;
  if (m.attn !== "cross") throw new Error("modulate: self-attention modulation is the SVD setting (not for SD)");
  const schedule = legacyDdpmSchedule(s.steps);
  const settings: PassSettings = { schedule, start: s.t_m, end: s.steps, guidance: s.guidance, cond: await condOf(b) };
  const injectPositions = m.injection ? INJECT_POSITIONS : [];
  const namesOf = (ps: readonly number[]) =>
    ps.flatMap((i) => [tapName(i, "attn1_q"), tapName(i, "attn1_k"), tapName(i, "attn2_out")]);
  const injectNames = namesOf(injectPositions);
  const runner = new VariantRunner(b, m.block, injectPositions);
  const vae = await vaeOf(b, m.decoder);
  // SD blends on steps t_m..t_m+1 only; SVD (and blend_until_end) to the last step (docs/method.md §8.4).
  const blendEnd = !m.latent_blending ? -1 : m.blend_until_end ? s.steps - 1 : s.t_m + 1;
  const reusePrefix = !!opt?.reusePrefix;
  const modSettings: ModulationSettings = {
    lambda: m.lambda,
    tokens,
    injection: m.injection,
    injectNames,
    blendEnd,
    grid: [gh, gw],
    reusePrefix,
    // At the split (the modulated block's input) only positions from there on still read injected tensors.
    prefixInjectNames: namesOf(injectPositions.filter((i) => i >= runner.splitPosition)),
    microBatch: opt?.microBatch,
  };

  const L = labels.length;
  const diffOut = tensorOutput(ctx, "diff", "U8", [N, L, H0, W0]);
  // The full plan (a repeated last batch is rerun, as in the reference); masks come from its distinct slot.
  const plan = planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean);
  const distinct = distinctBatches(plan);
  const batches = opt?.skipRepeats ? distinct : plan;
  const owned = finalRows(batches);
  // Optimized schedule inside the runner: each (frame, mask) difference map is also a shared sample keyed by what
  // it depends on — frames and inverted latents (upstream keys), params, batch, frame, mask — so ablation rows
  // that agree on a mask compute it once (tests/stages/modulate_test.ts). The reference stays literal.
  const shared = opt && ctx.upstreamKeys?.frames && ctx.upstreamKeys?.invert ? ctx.samples : undefined;
  const { schedule: _, ...sharedParams } = p;
  const sharedBase = { frames: ctx.upstreamKeys?.frames, invert: ctx.upstreamKeys?.invert, params: sharedParams };
  let done = 0, sharedPairs = 0;
  for (const [bi, { start, end }] of batches.entries()) {
    const slot = distinct.findIndex((d) => d.start === start && d.end === end);
    const F = end - start;
    // This batch's maps; a later (overlapping) batch overwrites its frames entirely, so only the rows no later
    // batch rewrites are streamed out (absent labels stay zero).
    const diff = u8([F, L, H0, W0]);
    const mask = (f: number, label: number): Uint8Array | null => {
      const src = coarse.data.subarray((slot * F + f) * tokens, (slot * F + f + 1) * tokens);
      const out = new Uint8Array(tokens);
      let any = false;
      for (let n = 0; n < tokens; n++) if (src[n] === label) (out[n] = 1, any = true);
      return any ? out : null;
    };
    const itemKey = (f: number, mk: Uint8Array) => ({ ...sharedBase, batch: [start, end], f, mask: mk.join("") });
    // A present (frame, label) still to modulate: its mask, or null when absent or already shared (copied in).
    const todo = (f: number, l: number): Uint8Array | null => {
      const mk = mask(f, labels[l]);
      const hit = mk && shared?.get(itemKey(f, mk));
      if (hit?.length !== H0 * W0) return mk;
      diff.data.set(hit, (f * L + l) * H0 * W0);
      sharedPairs++;
      return null;
    };
    const { groups, keys } = opt ? optimizedGroups(F, L, todo, opt.groupSamples)
      : referenceGroups(F, L, (f, l) => mask(f, labels[l]));
    // Everything shared already: not even the unmodulated pass is needed.
    const x0 = groups.length
      ? addNoise(rowsOf(inputs.invert, "z0", start, end) as Tensor<"F32">, schedule.sigmas[s.t_m], eps)
      : null;
    const record = x0 && await unmodulatedPass(runner, x0, settings, { taps: injectNames, recordPrefix: reusePrefix });
    const plus = new Map<string, Tensor<"U8">>();
    const minus = new Map<string, Tensor<"U8">>();
    if (!groups.length) ctx.progress(++done, batches.length, "batches modulated");
    for (const [g, samples] of groups.entries()) {
      const xT = await modulatedPass(runner, x0!, record!, samples, settings, modSettings);
      const imgs = images01ToFrames(await vae.decode(xT)); // [B, H, W, 3] uint8
      const [, H, W] = imgs.shape;
      for (const [j, k] of keys[g].entries()) {
        const one = { dtype: "U8" as const, shape: [H, W, 3], data: imgs.data.subarray(j * H * W * 3, (j + 1) * H * W * 3) };
        const full = resizeBilinearCv(one, H0, W0);
        const key = `${k.f}|${k.l}`;
        (k.sign > 0 ? plus : minus).set(key, full);
        const a = plus.get(key), c = minus.get(key);
        if (a && c) {
          const d = differenceMap(a, c, m.difference_mode);
          diff.data.set(d.data, (k.f * L + k.l) * H0 * W0);
          shared?.put(itemKey(k.f, samples[j].mask!), d.data);
          plus.delete(key);
          minus.delete(key);
        }
      }
      done += 1 / groups.length;
      ctx.progress(Math.round(100 * done) / 100, batches.length, "batches modulated");
    }
    const [a, b] = owned[bi];
    if (b > a) {
      const plane = L * H0 * W0;
      diffOut.append({ dtype: "U8", shape: [b - a, L, H0, W0], data: diff.data.subarray((a - start) * plane, (b - start) * plane) });
    }
  }
  if (sharedPairs) ctx.log(`${sharedPairs} (frame, label) difference maps shared with other rows`);
  return { tensors: diffOut.result(), json: { labels } };
}

/**
 * For each batch of a plan (in order), the frame rows [a, b) it writes last — the rows no later batch covers.
 * Batch starts never decrease, so these ranges are consecutive and cover [0, N): streaming them in order equals
 * overwriting a whole-clip tensor batch after batch.
 */
export function finalRows(batches: readonly BatchRange[]): [number, number][] {
  let written = 0;
  return batches.map((r, i) => {
    const laterStart = Math.min(r.end, ...batches.slice(i + 1).map((q) => q.start));
    const b = Math.max(written, laterStart);
    const out: [number, number] = [written, b];
    written = b;
    return out;
  });
}

/** Which (frame, label, sign) each sample of a group is. */
interface SampleKey {
  f: number;
  l: number;
  sign: number;
}

/** The reference order: for sign in (+, −), for each label, one group of every frame (absent → zero mask). */
function referenceGroups(F: number, L: number, mask: (f: number, l: number) => Uint8Array | null) {
  const groups: ModSample[][] = [], keys: SampleKey[][] = [];
  for (const sign of [1, -1]) {
    for (let l = 0; l < L; l++) {
      groups.push(Array.from({ length: F }, (_, f) => ({ frame: f, mask: mask(f, l), sign })));
      keys.push(Array.from({ length: F }, (_, f) => ({ f, l, sign })));
    }
  }
  return { groups, keys };
}

/** Only present (frame, label) pairs, both signs adjacent, in groups of at most `size` samples. */
function optimizedGroups(F: number, L: number, mask: (f: number, l: number) => Uint8Array | null, size: number) {
  const all: ModSample[] = [], allKeys: SampleKey[] = [];
  for (let l = 0; l < L; l++) {
    for (let f = 0; f < F; f++) {
      const mk = mask(f, l);
      if (!mk) continue;
      for (const sign of [1, -1]) (all.push({ frame: f, mask: mk, sign }), allKeys.push({ f, l, sign }));
    }
  }
  // Even sizes keep a sample's ± pair in one group (their difference map is taken as soon as both exist).
  const step = Math.max(2, size - (size % 2));
  const groups: ModSample[][] = [], keys: SampleKey[][] = [];
  for (let i = 0; i < all.length; i += step) (groups.push(all.slice(i, i + step)), keys.push(allKeys.slice(i, i + step)));
  return { groups, keys };
}
