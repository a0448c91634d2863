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
import { concat0, f32, rows, type Tensor, toF32 } from "../../tensor/tensor.ts";
import { type CachedGraph, cachedGraph } from "../onnx/cache.ts";
import { createSession, evaluations, type Provider, type Session } from "../runtime.ts";
import { expectPipeline, findComponent, readSchedulerConfig } from "../weights/diffusers.ts";
import { SafetensorsWeights, type WeightSource } from "../weights/weight_map.ts";
import { parseUNetConfig, type UNetLayout } from "./unet_config.ts";
import { buildUNetGraph, checkBuildOptions, posLabel, PREFIX_HIDDEN, type UNetBuildOptions } from "./unet_graph.ts";
import { specParams, unetSpec } from "./unet_spec.ts";

export {
  attentionPositions,
  availableTaps,
  PREFIX_HIDDEN,
  prefixNames,
  tapName,
  type UNetBuildOptions,
} from "./unet_graph.ts";

/** Options of {@link UNet.load}. */
export interface UNetLoadOptions extends UNetBuildOptions {
  provider?: Provider;
  /** Weight/compute precision of the graph (IO stays float32). Default fp32. */
  dtype?: "fp32" | "fp16";
  /** Prefer the `.fp16.safetensors` weights file of the folder. */
  weightsVariant?: "fp16";
  /** Graph cache directory (default results/cache/graphs). */
  cacheDir?: string;
  /** Model weight bytes at which external data is used (default 1.8e9; 0 forces it). */
  externalThreshold?: number;
  threads?: number;
  /** Name of this variant in the evaluation counters (default derived from the options). */
  variantName?: string;
  /** Attention kernel: onnxruntime's fused MultiHeadAttention ("mha", default) or plain ops ("matmul"). */
  attention?: "mha" | "matmul";
  /**
   * Largest batch sent to onnxruntime at once; bigger batches are split and the outputs concatenated
   * (bounds activation memory, e.g. 28 samples at 832×448). Default: no splitting.
   */
  microBatch?: number;
}

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
  taps: Record<string, Tensor<"F32">>;
  /** `prefix.*` outputs of a variant built with `exposePrefixAt`. */
  prefix?: Record<string, Tensor<"F32">>;
}

/** Describe options for counters and messages. */
function describe(o: UNetLoadOptions): string {
  const parts = ["unet"];
  if (o.truncate) parts.push("truncated");
  if (o.modulationPosition !== undefined && o.modulationPosition !== null) {
    parts.push(`mod${o.modulationPosition}`);
  }
  if (o.injectPositions?.length) parts.push(`inj${o.injectPositions.join(",")}`);
  if (o.taps?.length) parts.push(`taps${o.taps.length}`);
  if (o.exposePrefixAt !== undefined && o.exposePrefixAt !== null) parts.push(`prefix${o.exposePrefixAt}`);
  if (o.resumeAt !== undefined && o.resumeAt !== null) parts.push(`from${o.resumeAt}`);
  if (o.dtype === "fp16") parts.push("fp16");
  return parts.join(":");
}

/** A loaded UNet variant. */
export class UNet {
  private constructor(
    readonly layout: UNetLayout,
    readonly options: UNetLoadOptions,
    readonly graph: CachedGraph,
    readonly session: Session,
    /** "epsilon" or "v_prediction" (from scheduler/scheduler_config.json; "epsilon" if absent). */
    readonly predictionType: string,
    readonly variantName: string,
  ) {}

  /** Load `root` (a diffusers SD pipeline folder, or a folder holding unet/ or the unet files). */
  static async load(root: string, opts: UNetLoadOptions = {}): Promise<UNet> {
    expectPipeline(root, "sd");
    const comp = findComponent(root, "unet", { variant: opts.weightsVariant });
    const layout = parseUNetConfig(comp.config, comp.configPath);
    checkBuildOptions(layout, opts);
    const weights = new SafetensorsWeights(comp.weightsPath);
    try {
      weights.validate(unetSpec(layout), { configPath: comp.configPath });
      const sched = readSchedulerConfig(root);
      const pred = String(sched?.prediction_type ?? "epsilon");
      if (pred !== "epsilon" && pred !== "v_prediction") {
        fail(
          `${root}/scheduler/scheduler_config.json`,
          `prediction_type "${pred}" is not supported (expected epsilon or v_prediction)`,
        );
      }
      return await UNet.fromWeights(layout, weights, { ...opts, configJson: comp.config }, pred);
    } finally {
      weights.close();
    }
  }

  /** Build/load a variant from an already validated weight source (benchmarks use random weights). */
  static async fromWeights(
    layout: UNetLayout,
    weights: WeightSource,
    opts: UNetLoadOptions & { configJson?: unknown },
    predictionType = "epsilon",
  ): Promise<UNet> {
    const dtype = opts.dtype === "fp16" ? "F16" : "F32";
    const build: UNetBuildOptions = {
      taps: [...(opts.taps ?? [])].sort(),
      modulationPosition: opts.modulationPosition ?? null,
      injectPositions: [...(opts.injectPositions ?? [])].sort((a, b) => a - b),
      truncate: opts.truncate ?? false,
    };
    // Only set when used, so the cache keys of existing variants do not change.
    if (opts.exposePrefixAt !== undefined && opts.exposePrefixAt !== null) build.exposePrefixAt = opts.exposePrefixAt;
    if (opts.resumeAt !== undefined && opts.resumeAt !== null) build.resumeAt = opts.resumeAt;
    const spec = unetSpec(layout);
    const graph = cachedGraph({
      name: "unet",
      key: { config: opts.configJson ?? layout, weights: weights.identity, build },
      dir: opts.cacheDir,
      dtype,
      weightBytes: specParams(spec) * (dtype === "F16" ? 2 : 4),
      externalThreshold: opts.externalThreshold,
      attention: opts.attention,
    }, (g) => buildUNetGraph(g, weights, layout, build));
    const variantName = opts.variantName ?? describe(opts);
    const session = await createSession({ path: graph.path }, {
      provider: opts.provider,
      threads: opts.threads,
      label: variantName,
    });
    return new UNet(layout, opts, graph, session, predictionType, variantName);
  }

  /** Evaluate a batch (split into micro-batches when `microBatch` is set). */
  async run(input: UNetRunInput): Promise<UNetRunOutput> {
    const names = this.session.inputNames;
    const resumes = !names.includes("sample");
    const first = resumes ? input.prefix?.[PREFIX_HIDDEN] : input.sample;
    if (!first) {
      fail("unet.run", `variant ${this.variantName} needs ${resumes ? `prefix tensor ${PREFIX_HIDDEN}` : "a sample"}`);
    }
    const B = first.shape[0];
    const t = typeof input.timestep === "number"
      ? new Float32Array(B).fill(input.timestep)
      : Float32Array.from(input.timestep);
    if (t.length !== B) fail("unet.run", `timestep has ${t.length} values for a batch of ${B}`);
    const feeds: Record<string, Tensor> = { timestep: f32([B], t), context: input.context };
    if (resumes) {
      for (const n of names.filter((n) => n.startsWith("prefix."))) {
        const v = input.prefix?.[n];
        if (!v) fail("unet.run", `variant ${this.variantName} needs prefix tensor ${n}`);
        feeds[n] = v;
      }
    } else feeds.sample = first;
    if (names.includes("modulation")) {
      if (!input.modulation) {
        fail("unet.run", `variant ${this.variantName} needs a modulation input [B, h·w, 1]`);
      }
      feeds.modulation = input.modulation;
    }
    for (const n of names) {
      if (!n.startsWith("inject.")) continue;
      const tap = `up.${n.slice("inject.".length)}`;
      const v = input.injected?.[tap];
      if (!v) fail("unet.run", `variant ${this.variantName} needs injected tensor ${tap}`);
      feeds[n] = v;
    }
    for (const [k, v] of Object.entries(feeds)) {
      if (v.shape[0] !== B) fail("unet.run", `input ${k} has batch ${v.shape[0]}, sample has ${B}`);
    }
    const mb = Math.max(1, Math.min(B, input.microBatch ?? this.options.microBatch ?? B));
    const parts: Record<string, Tensor>[] = [];
    for (let i = 0; i < B; i += mb) {
      const sub: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) sub[k] = mb === B ? v : rows(v, i, Math.min(B, i + mb));
      const t0 = performance.now();
      parts.push(await this.session.run(sub));
      evaluations.add(this.variantName, Math.min(B, i + mb) - i, performance.now() - t0);
    }
    const out: Record<string, Tensor<"F32">> = {};
    for (const k of Object.keys(parts[0])) {
      out[k] = parts.length === 1 ? toF32(parts[0][k]) : concat0(parts.map((p) => toF32(p[k])));
    }
    const { eps, ...rest } = out;
    const taps: Record<string, Tensor<"F32">> = {}, prefix: Record<string, Tensor<"F32">> = {};
    for (const [k, v] of Object.entries(rest)) (k.startsWith("prefix.") ? prefix : taps)[k] = v;
    return Object.keys(prefix).length ? { eps, taps, prefix } : { eps, taps };
  }

  /** Positions whose tensors this variant expects as injection inputs. */
  get injectPositions(): readonly number[] {
    return this.options.injectPositions ?? [];
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

export { posLabel };
