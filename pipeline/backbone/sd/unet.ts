/**
 * The SD-family UNet as a runnable model: load a diffusers folder (validated weights), build (or reuse
 * from the graph cache) the requested variant — taps, modulation, injection, truncation — and run it on
 * project Tensors, counting sample-evaluations per variant.
 *
 * @example
 * ```ts
 * const unet = await UNet.load("models/sd21-base", { taps: ["up.pos07.attn1_q"], modulationPosition: 7 });
 * const { eps, taps } = await unet.run({ sample, timestep: 119, context, modulation });
 * ```
 * @module
 */
import { fail } from "../../errors.ts";
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { readSchedulerConfig } from "../weights/diffusers.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { parseUNetConfig, type UNetLayout } from "./config.ts";
import {
  buildUNetGraph,
  checkBuildOptions,
  posLabel,
  PREFIX_HIDDEN,
  type UNetBuildOptions,
} from "./graph.ts";
import * as variant from "../unet_session.ts";
import { unetSpec } from "./spec.ts";

export {
  attentionPositions,
  availableTaps,
  PREFIX_HIDDEN,
  prefixNames,
  tapName,
  type UNetBuildOptions,
} from "./graph.ts";

/** Options of {@link UNet.load}. */
export interface UNetLoadOptions extends UNetBuildOptions, variant.VariantRuntimeOptions {}

/** Inputs of one evaluation. */
export interface UNetRunInput {
  /** [B, C, H, W] latents (already scaled by c_in); not used by a variant that resumes from a prefix. */
  sample?: Tensor<"F32">;
  /** One timestep for all samples or one per sample. */
  timestep: number | readonly number[] | Float32Array;
  /** [B, S, D] text states. */
  context: Tensor<"F32">;
  /** [B, h·w, 1] added to the attn2 output of the modulation position (variant built with it). */
  modulation?: Tensor<"F32">;
  /** Stored tensors by tap name, e.g. "up.pos07.attn1_q", "up.pos07.attn1_k", "up.pos07.attn2_out". */
  injected?: Record<string, Tensor<"F32">>;
  /** `prefix.*` tensors of a variant built with `resumeAt` (as output by one built with `exposePrefixAt`). */
  prefix?: Record<string, Tensor<"F32">>;
  /** Largest batch per onnxruntime run for this call (default: the variant's `microBatch`). */
  microBatch?: number;
}

/** Outputs of one evaluation. */
export interface UNetRunOutput {
  /** Model prediction (eps or v per `predictionType`); absent in truncated variants. */
  eps?: Tensor<"F32">;
  /** The requested taps by name. */
  taps: Record<string, Tensor<"F32">>;
  /** `prefix.*` outputs of a variant built with `exposePrefixAt`. */
  prefix?: Record<string, Tensor<"F32">>;
}

/** The SD UNet for {@link variant.withUNetWeights}. */
const SD = { kind: "sd" as const, parse: parseUNetConfig, check: checkBuildOptions, spec: unetSpec };

/** Describe options for counters and messages. */
function describe(o: UNetLoadOptions): string {
  const extra: string[] = [];
  if (o.exposePrefixAt !== undefined && o.exposePrefixAt !== null) extra.push(`prefix${o.exposePrefixAt}`);
  if (o.resumeAt !== undefined && o.resumeAt !== null) extra.push(`from${o.resumeAt}`);
  return variant.describeVariant("unet", o, "", extra);
}

/** A loaded UNet variant. */
export class UNet extends variant.LoadedVariant<UNetLayout, UNetLoadOptions> {
  private constructor(
    layout: UNetLayout,
    options: UNetLoadOptions,
    v: variant.OpenVariant,
    /** "epsilon" or "v_prediction" (from scheduler/scheduler_config.json; "epsilon" if absent). */
    readonly predictionType: string,
  ) {
    super(layout, options, v.graph, v.session, v.variantName);
  }

  /** Load `root` (a diffusers SD pipeline folder, or a folder holding unet/ or the unet files). */
  static load(root: string, opts: UNetLoadOptions = {}): Promise<UNet> {
    return variant.withUNetWeights(root, SD, opts, (layout, weights, configJson) => {
      const sched = readSchedulerConfig(root);
      const pred = String(sched?.prediction_type ?? "epsilon");
      if (pred !== "epsilon" && pred !== "v_prediction") {
        fail(
          `${root}/scheduler/scheduler_config.json`,
          `prediction_type "${pred}" is not supported (expected epsilon or v_prediction)`,
        );
      }
      return UNet.fromWeights(layout, weights, { ...opts, configJson }, pred);
    });
  }

  /** Build/load a variant from an already validated weight source (benchmarks use random weights). */
  static async fromWeights(
    layout: UNetLayout,
    weights: WeightSource,
    opts: UNetLoadOptions & { configJson?: unknown },
    predictionType = "epsilon",
  ): Promise<UNet> {
    const build: UNetBuildOptions = variant.normalisedBuild(opts);
    // Only set when used, so the cache keys of existing variants do not change.
    if (opts.exposePrefixAt !== undefined && opts.exposePrefixAt !== null) {
      build.exposePrefixAt = opts.exposePrefixAt;
    }
    if (opts.resumeAt !== undefined && opts.resumeAt !== null) build.resumeAt = opts.resumeAt;
    const spec = unetSpec(layout);
    const v = await variant.openVariant(
      { name: "unet", layout, weights, build, spec, builder: buildUNetGraph },
      opts,
      describe(opts),
    );
    return new UNet(layout, opts, v, predictionType);
  }

  /** Evaluate a batch (split into micro-batches when `microBatch` is set). */
  async run(input: UNetRunInput): Promise<UNetRunOutput> {
    const names = this.session.inputNames;
    const resumes = !names.includes("sample");
    const first = resumes ? input.prefix?.[PREFIX_HIDDEN] : input.sample;
    if (!first) {
      fail(
        "unet.run",
        `variant ${this.variantName} needs ${resumes ? `prefix tensor ${PREFIX_HIDDEN}` : "a sample"}`,
      );
    }
    const B = first.shape[0];
    const t = variant.timestepVector(input.timestep, B, "unet.run", `a batch of ${B}`);
    const feeds: Record<string, Tensor> = { timestep: f32([B], t), context: input.context };
    if (resumes) {
      for (const n of names.filter((n) => n.startsWith("prefix."))) {
        const v = input.prefix?.[n];
        if (!v) fail("unet.run", `variant ${this.variantName} needs prefix tensor ${n}`);
        feeds[n] = v;
      }
    } else feeds.sample = first;
    variant.addHookFeeds(feeds, names, input, "unet.run", this.variantName, "[B, h·w, 1]");
    for (const [k, v] of Object.entries(feeds)) {
      if (v.shape[0] !== B) fail("unet.run", `input ${k} has batch ${v.shape[0]}, sample has ${B}`);
    }
    const out = await variant.runMicroBatched(this.session, this.variantName, feeds, B, {
      microBatch: input.microBatch ?? this.options.microBatch,
    });
    const { eps, ...rest } = out;
    const taps: Record<string, Tensor<"F32">> = {}, prefix: Record<string, Tensor<"F32">> = {};
    for (const [k, v] of Object.entries(rest)) (k.startsWith("prefix.") ? prefix : taps)[k] = v;
    return Object.keys(prefix).length ? { eps, taps, prefix } : { eps, taps };
  }
}

export { posLabel };
