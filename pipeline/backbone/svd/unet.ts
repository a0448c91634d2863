/**
 * The Stable Video Diffusion UNet as a runnable model: load a diffusers SVD folder (validated weights), build (or
 * reuse from the graph cache) the requested variant — taps, modulation, temporal q/k injection, truncation — and
 * run it on project Tensors, counting sample-evaluations (frames) per variant.
 *
 * @example
 * ```ts
 * const unet = await SvdUNet.load("models/svd", { taps: ["up.pos08.spatial.attn1_q"], modulationPosition: 8 });
 * const { v, taps } = await unet.run({
 *   sample,                        // [B, F, 8, h, w] = cat(x·c_in, conditioning latent)
 *   timestep: cNoise,              // 0.25·ln σ
 *   context: imageEmbedding,       // [B, 1, 1024]
 *   addedTimeIds: [14, 127, 0.02], // fps_id, motion_bucket_id, cond_aug
 *   modulation,                    // [B·F, h/16·w/16, 1] = ±λ·mask per frame
 * });
 * ```
 * @module
 */
import { fail } from "../../errors.ts";
import { f32, numel, type Tensor } from "../../tensor/tensor.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { parseSvdUNetConfig, type SvdLayout } from "./config.ts";
import { buildSvdUNetGraph, checkSvdBuildOptions, type SvdBuildOptions } from "./graph.ts";
import { svdUnetSpec } from "./spec.ts";
import * as variant from "../unet_session.ts";

export { svdAvailableTaps, type SvdBuildOptions, type SvdModulationTarget } from "./graph.ts";

/** Options of {@link SvdUNet.load} (`microBatch` counts videos: frames of one video are never split). */
export interface SvdUNetLoadOptions extends SvdBuildOptions, variant.VariantRuntimeOptions {}

/** Inputs of one evaluation (B videos of F frames). */
export interface SvdUNetRunInput {
  /** [B, F, C_in, h, w]: channels 0–3 the noisy latent·c_in, 4–7 the conditioning latent. */
  sample: Tensor<"F32">;
  /** c_noise: one value for all videos or one per video. */
  timestep: number | readonly number[] | Float32Array;
  /** [B, S, D] image embedding (S = 1 for SVD). */
  context: Tensor<"F32">;
  /** Added time ids (fps_id, motion_bucket_id, cond_aug): one list for all videos, or a [B, n] tensor. */
  addedTimeIds: readonly number[] | Float32Array | Tensor<"F32">;
  /** [B·F, h·w, 1] added to the modulated attn1 output(s) of the modulation position (spatial token layout). */
  modulation?: Tensor<"F32">;
  /** Stored temporal q/k by tap name, e.g. "up.pos08.temporal.attn1_q" ([B·h·w, F, C]). */
  injected?: Record<string, Tensor<"F32">>;
}

/** Outputs of one evaluation. */
export interface SvdUNetRunOutput {
  /** Network output F_θ (v-prediction) [B, F, C_out, h, w]; absent in truncated variants. */
  v?: Tensor<"F32">;
  /** The requested taps by name. */
  taps: Record<string, Tensor<"F32">>;
}

/** The SVD UNet for {@link variant.withUNetWeights}. */
const SVD = {
  kind: "svd" as const,
  parse: parseSvdUNetConfig,
  check: checkSvdBuildOptions,
  spec: svdUnetSpec,
};

function describe(o: SvdUNetLoadOptions): string {
  return variant.describeVariant(
    "svd_unet",
    o,
    o.modulationTargets ? `(${o.modulationTargets.join("+")})` : "",
  );
}

/** A loaded SVD UNet variant. */
export class SvdUNet extends variant.LoadedVariant<SvdLayout, SvdUNetLoadOptions> {
  /** Load `root`: a diffusers SVD pipeline folder, or a folder holding unet/ (or the unet files themselves). */
  static load(root: string, opts: SvdUNetLoadOptions = {}): Promise<SvdUNet> {
    return variant.withUNetWeights(
      root,
      SVD,
      opts,
      (layout, weights, configJson) => SvdUNet.fromWeights(layout, weights, { ...opts, configJson }),
    );
  }

  /** Build/load a variant from an already validated weight source (benchmarks use random weights). */
  static async fromWeights(
    layout: SvdLayout,
    weights: WeightSource,
    opts: SvdUNetLoadOptions & { configJson?: unknown },
  ): Promise<SvdUNet> {
    checkSvdBuildOptions(layout, opts);
    const targets = [...(opts.modulationTargets ?? ["spatial", "temporal"])].sort();
    const build: SvdBuildOptions = { ...variant.normalisedBuild(opts), modulationTargets: targets };
    const graph = {
      name: "svd_unet",
      layout,
      weights,
      build,
      spec: svdUnetSpec(layout),
      builder: buildSvdUNetGraph,
    };
    const v = await variant.openVariant(graph, opts, describe(opts));
    return new SvdUNet(layout, opts, v.graph, v.session, v.variantName);
  }

  /**
   * Evaluate B videos, split into micro-batches of whole videos when `microBatch` is set (the run option
   * overrides the load option).
   */
  async run(input: SvdUNetRunInput, opts: { microBatch?: number } = {}): Promise<SvdUNetRunOutput> {
    const s = input.sample.shape;
    if (s.length !== 5 || s[2] !== this.layout.inChannels) {
      fail("svd_unet.run", `sample must be [B, F, ${this.layout.inChannels}, h, w], got [${s}]`);
    }
    const B = s[0], F = s[1];
    const t = variant.timestepVector(input.timestep, B, "svd_unet.run", `${B} videos`);
    const feeds: Record<string, Tensor> = {
      sample: input.sample,
      timestep: f32([B], t),
      context: input.context,
      added_time_ids: addedIds(input.addedTimeIds, B, this.layout.numAddedIds),
    };
    variant.addHookFeeds(
      feeds,
      this.session.inputNames,
      input,
      "svd_unet.run",
      this.variantName,
      "[B·F, h·w, 1]",
    );
    // Rows of every input per video (1 for per-video inputs, F for frame rows, h·w for temporal token rows).
    const per: Record<string, number> = {};
    for (const [k, v] of Object.entries(feeds)) {
      per[k] = v.shape[0] / B;
      if (!Number.isInteger(per[k]) || per[k] < 1 || (k === "modulation" && per[k] !== F)) {
        fail(
          "svd_unet.run",
          `input ${k} has ${v.shape[0]} rows, not a multiple of the ${B} videos of sample`,
        );
      }
    }
    const out = await variant.runMicroBatched(this.session, this.variantName, feeds, B, {
      microBatch: opts.microBatch ?? this.options.microBatch,
      rowsPer: per,
      samplesPerItem: F,
      // α taps are weights, not batch rows: the same in every micro-batch.
      shared: (k) => k.endsWith("time_mixer_alpha"),
    });
    const { v, ...taps } = out;
    return { v, taps };
  }
}

/** Added time ids as the graph's [B, n] input. */
function addedIds(ids: SvdUNetRunInput["addedTimeIds"], B: number, n: number): Tensor<"F32"> {
  if ("shape" in ids && "dtype" in ids) {
    if (ids.shape.length !== 2 || ids.shape[0] !== B || ids.shape[1] !== n) {
      fail("svd_unet.run", `addedTimeIds must be [${B}, ${n}], got [${ids.shape}]`);
    }
    return ids;
  }
  const list = Float32Array.from(ids as ArrayLike<number>);
  if (list.length !== n) fail("svd_unet.run", `expected ${n} added time ids, got ${list.length}`);
  const out = new Float32Array(numel([B, n]));
  for (let b = 0; b < B; b++) out.set(list, b * n);
  return f32([B, n], out);
}
