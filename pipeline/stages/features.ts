/**
 * Stage `features` (docs/method.md §4): the unmodulated pass of every distinct batch of the §6.4 plan, tapped at
 * the feature step t_f for the self-attention queries of the decoder blocks the method reads.
 *
 * Artifacts: tensors `q<i>` [T, h·w, C] for every decoder block i of `features.blocks` ∪ {features.block,
 * cbr.block}: raw to_q output, conditional half, stacked per distinct batch (T = Σ batch lengths: a frame's
 * features depend on its batch through ε); json `grid` [h, w], `frames`, `batches` [[start, end), …].
 * Aggregation (mean of blocks) and normalisation are left to the consumers, so ablation rows that differ only in
 * aggregation share this expensive stage.
 * @module
 */
import {
  type Artifacts,
  rowsOf,
  shapeOf,
  type Stage,
  type TensorOutput,
  tensorOutput,
} from "../dag/stage.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { modelFiles, openBackbone } from "../backbone/backbone.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import {
  BACKBONE_FIELDS,
  backboneOf,
  BATCHING,
  FEATURE_SAMPLER_FIELDS,
  keysOf,
  samplerOf,
} from "./params.ts";

type P = Record<string, unknown>;

/** Decoder blocks whose features the method reads (aggregation set, single block, CBR block). */
export function featureBlocks(p: P): number[] {
  const blocks = new Set<number>([...(p["features.blocks"] as number[]), p["features.block"] as number]);
  blocks.add(p["cbr.block"] as number);
  return [...blocks].sort((a, b) => a - b);
}

export const featuresStage: Stage<P> = {
  name: "features",
  version: 1,
  // The blocks it taps: the aggregation set, the single block and the CBR block, whatever aggregation is on.
  params: [...keysOf("backbone", BACKBONE_FIELDS), ...keysOf("sampler", FEATURE_SAMPLER_FIELDS), ...BATCHING]
    .concat(["features.blocks", "features.block", "cbr.block"]),
  upstream: ["frames", "invert"],
  inputFiles: (p) => modelFiles(p["backbone.weights"] as string),
  async run(inputs, p, ctx): Promise<Artifacts> {
    const z0Shape = shapeOf(inputs.invert, "z0")!.shape; // [N, 4, h, w]
    const noise = noiseOf(inputs.invert);
    const N = z0Shape[0];
    const backbone = openBackbone(backboneOf(p));
    const sampler = samplerOf(p, FEATURE_SAMPLER_FIELDS);
    const blocks = featureBlocks(p);
    const ranges = distinctBatches(planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean));
    const T = ranges.reduce((a, r) => a + r.end - r.start, 0);
    // Each block's queries stream out batch by batch.
    const out: Record<string, TensorOutput<"F32">> = {};
    for (const [bi, { start, end }] of ranges.entries()) {
      // Every batch has exactly F frames (the last one overlaps, §6.4), so it receives the whole ε.
      const q = await backbone.features(
        {
          frames: () => rowsOf(inputs.frames, "frames", start, end) as Tensor<"U8">,
          z0: rowsOf(inputs.invert, "z0", start, end) as Tensor<"F32">,
          noise,
        },
        sampler,
        blocks,
      );
      for (const i of blocks) {
        const t = q[i];
        out[`q${i}`] ??= tensorOutput(ctx, `q${i}`, "F32", [T, t.shape[1], t.shape[2]]);
        out[`q${i}`].append(t);
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

/** The batch noise the invert stage drew: every tensor of its artifact but the latents (never loaded whole). */
export function noiseOf(invert: Artifacts): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const k of Object.keys(invert.tensors)) if (k !== "z0") out[k] = invert.tensors[k];
  return out;
}
