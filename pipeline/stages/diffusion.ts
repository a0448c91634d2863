/**
 * Stages `invert` and `features` (ALGORITHM.md §3.1, §4): encode the frames of a clip into latents, draw the
 * per-batch noise, and run the unmodulated pass of every batch to tap the self-attention queries of decoder
 * blocks at the feature step.
 *
 * Artifacts
 * - invert: tensors `z0` [N, 4, H/8, W/8] (UNet-scaled latents, posterior mean — ALGORITHM.md §13.12) and `eps`
 *   [F, 4, H/8, W/8] (the ε every batch receives: the reference re-seeds at every batch, so batch b's in-batch
 *   frame j gets eps[j]).
 * - features: tensors `q<i>` [T, h·w, C] for every decoder block i of `features.blocks` ∪ {features.block,
 *   cbr.block}: raw to_q output, conditional half, at step t_f, stacked per distinct batch of the §6.4 plan
 *   (T = Σ batch lengths: a frame's features depend on its batch through ε); json `grid` [h, w], `frames`,
 *   `batches` [[start, end), …]. Aggregation (mean of blocks) and normalisation are left to the consumers, so
 *   ablation rows that differ only in aggregation share this expensive stage.
 * @module
 */
import type { Artifacts, Stage } from "../dag/stage.ts";
import { f32, numel, type Tensor } from "../tensor/tensor.ts";
import { legacyDdpmSchedule } from "../backbone/sampler/schedule.ts";
import { addNoise, gaussianNoise } from "../backbone/sampler/noise.ts";
import { tapName } from "../backbone/models/unet.ts";
import { type BackboneParams, condOf, vaeOf, VariantRunner } from "./backbone.ts";
import { unmodulatedPass } from "./passes.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import { framesToImages01, gatherFrames } from "./frames_util.ts";

type P = Record<string, unknown>;

/** Decoder blocks whose features the method reads (aggregation set, single block, CBR block). */
export function featureBlocks(p: P): number[] {
  const blocks = new Set<number>([...(p["features.blocks"] as number[]), p["features.block"] as number]);
  blocks.add(p["cbr.block"] as number);
  return [...blocks].sort((a, b) => a - b);
}

/** Encode + noise. */
export const invertStage: Stage<P> = {
  name: "invert",
  version: 1,
  params: ["backbone", "seed", "batch_size"],
  upstream: ["frames"],
  async run(inputs, p, ctx) {
    const frames = inputs.frames.tensors.frames as Tensor<"U8">; // [N, H, W, 3]
    const [N, H, W] = frames.shape;
    const vae = await vaeOf(p.backbone as BackboneParams);
    const chunk = 7;
    const parts: Float32Array[] = [];
    let latentShape: readonly number[] = [];
    for (let i = 0; i < N; i += chunk) {
      const idx = Array.from({ length: Math.min(chunk, N - i) }, (_, k) => i + k);
      const z = await vae.encode(framesToImages01(gatherFrames(frames, idx)));
      parts.push(z.data);
      latentShape = z.shape.slice(1);
      ctx.progress(Math.min(N, i + chunk), N, "frames encoded");
    }
    const z0 = new Float32Array(N * numel(latentShape));
    let off = 0;
    for (const d of parts) (z0.set(d, off), off += d.length);
    const F = Math.min(p.batch_size as number, N);
    const eps = gaussianNoise(p.seed as number, [F, ...latentShape]);
    if (H % 64 || W % 64) throw new Error(`invert: frames ${W}×${H} are not multiples of 64`);
    return { tensors: { z0: f32([N, ...latentShape], z0), eps }, json: {} };
  },
};

/** The unmodulated pass of every batch, tapped at step t_f. */
export const featuresStage: Stage<P> = {
  name: "features",
  version: 1,
  params: ["backbone", "sampler", "batch_size", "dedupe_last_batch", "features.blocks", "features.block", "cbr.block"],
  upstream: ["frames", "invert"],
  async run(inputs, p, ctx): Promise<Artifacts> {
    const z0 = inputs.invert.tensors.z0 as Tensor<"F32">;
    const eps = inputs.invert.tensors.eps as Tensor<"F32">;
    const N = z0.shape[0];
    const s = p.sampler as { steps: number; t_m: number; t_f: number; guidance: number };
    const b = p.backbone as BackboneParams;
    const schedule = legacyDdpmSchedule(s.steps);
    const blocks = featureBlocks(p);
    const taps = blocks.map((i) => tapName(i, "attn1_q"));
    const runner = new VariantRunner(b, 7, []);
    const cond = await condOf(b);
    const ranges = distinctBatches(planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean));
    const T = ranges.reduce((a, r) => a + r.end - r.start, 0);
    const out: Record<string, Float32Array> = {};
    const shapes: Record<string, number[]> = {};
    let row = 0;
    for (const [bi, { start, end }] of ranges.entries()) {
      const idx = Array.from({ length: end - start }, (_, k) => start + k);
      // Every batch has exactly F frames (the last one overlaps, §6.4), so it receives the whole ε.
      const x = addNoise(gatherFrames(z0, idx), schedule.sigmas[s.t_m], eps);
      const rec = await unmodulatedPass(runner, x, { schedule, start: s.t_m, end: s.t_f + 1, guidance: s.guidance, cond }, {
        taps,
        tapsOnlyAtLast: true,
        lastStepTruncated: true,
      });
      const last = rec.taps[rec.taps.length - 1];
      const Fb = idx.length;
      for (const [j, i] of blocks.entries()) {
        const t = last[taps[j]]; // [2F, n, C]: keep the conditional half
        const per = t.shape[1] * t.shape[2];
        shapes[`q${i}`] = [T, t.shape[1], t.shape[2]];
        out[`q${i}`] ??= new Float32Array(T * per);
        out[`q${i}`].set(t.data.subarray(Fb * per, 2 * Fb * per), row * per);
      }
      row += Fb;
      ctx.progress(bi + 1, ranges.length, "batches");
    }
    // Blocks 6–8 run at H/16 × W/16 = half the latent grid (ALGORITHM.md §2).
    const grid = [z0.shape[2] / 2, z0.shape[3] / 2];
    const tensors: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) tensors[k] = f32(shapes[k], v);
    const batches = ranges.map((r) => [r.start, r.end]);
    return { tensors, json: { grid, frames: inputs.frames.json.frames, batches } };
  },
};
