/**
 * Stages `invert` and `features` (docs/method.md §3.1, §4): encode the frames of a clip into latents, draw the
 * per-batch noise, and run the unmodulated pass of every batch to tap the self-attention queries of decoder
 * blocks at the feature step.
 *
 * Artifacts
 * - invert: tensors `z0` [N, 4, H/8, W/8] (UNet-scaled latents, posterior mean — docs/method.md §13.12) and `eps`
 *   [F, 4, H/8, W/8] (the ε every batch receives: the reference re-seeds at every batch, so batch b's in-batch
 *   frame j gets eps[j]).
 * - features: tensors `q<i>` [T, h·w, C] for every decoder block i of `features.blocks` ∪ {features.block,
 *   cbr.block}: raw to_q output, conditional half, at step t_f, stacked per distinct batch of the §6.4 plan
 *   (T = Σ batch lengths: a frame's features depend on its batch through ε); json `grid` [h, w], `frames`,
 *   `batches` [[start, end), …]. Aggregation (mean of blocks) and normalisation are left to the consumers, so
 *   ablation rows that differ only in aggregation share this expensive stage.
 * @module
 */
import { type Artifacts, rowsOf, shapeOf, type Stage, tensorOutput, type TensorOutput } from "../dag/stage.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { legacyDdpmSchedule } from "../backbone/sampler/schedule.ts";
import { addNoise, gaussianNoise } from "../backbone/sampler/noise.ts";
import { tapName } from "../backbone/models/unet.ts";
import { type BackboneParams, condOf, vaeOf, VariantRunner } from "./backbone.ts";
import { unmodulatedPass } from "./passes.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import { framesToImages01 } from "./frames_util.ts";
import { svdCondNoise } from "./svd_backbone.ts";
import { svdFeatureTaps } from "./svd_stages.ts";

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
    const [N, H, W] = shapeOf(inputs.frames, "frames")!.shape; // U8 [N, H, W, 3]
    if (H % 64 || W % 64) throw new Error(`invert: frames ${W}×${H} are not multiples of 64`);
    const vae = await vaeOf(p.backbone as BackboneParams);
    const chunk = 7;
    let z0: TensorOutput<"F32"> | null = null;
    let latentShape: readonly number[] = [];
    // Frames stream in and latents stream out, a chunk at a time.
    for (let i = 0; i < N; i += chunk) {
      const frames = rowsOf(inputs.frames, "frames", i, Math.min(N, i + chunk)) as Tensor<"U8">;
      const z = await vae.encode(framesToImages01(frames));
      latentShape = z.shape.slice(1);
      z0 ??= tensorOutput(ctx, "z0", "F32", [N, ...latentShape]);
      z0.append(z);
      ctx.progress(Math.min(N, i + chunk), N, "frames encoded");
    }
    const F = Math.min(p.batch_size as number, N);
    const eps = gaussianNoise(p.seed as number, [F, ...latentShape]);
    // SVD: the conditioning frame's cond_aug noise is drawn here too (same for every batch, svd_backbone.ts).
    const svd: Record<string, Tensor> = (p.backbone as BackboneParams).kind === "svd"
      ? { cond_noise: svdCondNoise(p.seed as number, H, W) }
      : {};
    return { tensors: { ...z0!.result(), eps, ...svd }, json: {} };
  },
};

/** The unmodulated pass of every batch, tapped at step t_f. */
export const featuresStage: Stage<P> = {
  name: "features",
  version: 1,
  params: ["backbone", "sampler", "batch_size", "dedupe_last_batch", "features.blocks", "features.block", "cbr.block"],
  upstream: ["frames", "invert"],
  async run(inputs, p, ctx): Promise<Artifacts> {
    const z0Shape = shapeOf(inputs.invert, "z0")!.shape; // [N, 4, h, w]
    const eps = inputs.invert.tensors.eps as Tensor<"F32">;
    const N = z0Shape[0];
    const s = p.sampler as { steps: number; t_m: number; t_f: number; guidance: number };
    const b = p.backbone as BackboneParams;
    const schedule = legacyDdpmSchedule(s.steps);
    const blocks = featureBlocks(p);
    const taps = blocks.map((i) => tapName(i, "attn1_q"));
    const runner = new VariantRunner(b, 7, []);
    const cond = b.kind === "svd" ? null : await condOf(b); // SVD is conditioned on images, per batch
    const ranges = distinctBatches(planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean));
    const T = ranges.reduce((a, r) => a + r.end - r.start, 0);
    // Each block's queries stream out batch by batch.
    const out: Record<string, TensorOutput<"F32">> = {};
    for (const [bi, { start, end }] of ranges.entries()) {
      // Every batch has exactly F frames (the last one overlaps, §6.4), so it receives the whole ε.
      const z0 = rowsOf(inputs.invert, "z0", start, end) as Tensor<"F32">;
      const last = b.kind === "svd"
        ? await svdFeatureTaps(b, rowsOf(inputs.frames, "frames", start, end) as Tensor<"U8">,
          inputs.invert.tensors.cond_noise as Tensor<"F32">, z0, eps, s, blocks) // same names and layout
        : (await unmodulatedPass(runner, addNoise(z0, schedule.sigmas[s.t_m], eps), {
          schedule, start: s.t_m, end: s.t_f + 1, guidance: s.guidance, cond: cond!,
        }, { taps, tapsOnlyAtLast: true, lastStepTruncated: true })).taps.at(-1)!;
      const Fb = end - start;
      for (const [j, i] of blocks.entries()) {
        const t = last[taps[j]]; // [2F, n, C]: keep the conditional half
        const per = t.shape[1] * t.shape[2];
        out[`q${i}`] ??= tensorOutput(ctx, `q${i}`, "F32", [T, t.shape[1], t.shape[2]]);
        out[`q${i}`].append({ dtype: "F32", shape: [Fb, t.shape[1], t.shape[2]], data: t.data.subarray(Fb * per, 2 * Fb * per) });
      }
      ctx.progress(bi + 1, ranges.length, "batches");
    }
    // Blocks 6–8 run at H/16 × W/16 = half the latent grid (docs/method.md §2).
    const grid = [z0Shape[2] / 2, z0Shape[3] / 2];
    const tensors: Record<string, Tensor> = {};
    for (const o of Object.values(out)) Object.assign(tensors, o.result());
    const batches = ranges.map((r) => [r.start, r.end]);
    return { tensors, json: { grid, frames: inputs.frames.json.frames, batches } };
  },
};
