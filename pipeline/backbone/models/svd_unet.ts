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
import { concat0, f32, numel, rows, type Tensor, toF32 } from "../../tensor/tensor.ts";
import { type CachedGraph, cachedGraph } from "../onnx/cache.ts";
import { createSession, evaluations, type Provider, type Session } from "../runtime.ts";
import { expectPipeline, findComponent } from "../weights/diffusers.ts";
import { SafetensorsWeights, type WeightSource } from "../weights/weight_map.ts";
import { parseSvdUNetConfig, type SvdLayout } from "./svd_config.ts";
import { buildSvdUNetGraph, checkSvdBuildOptions, type SvdBuildOptions } from "./svd_graph.ts";
import { svdUnetSpec } from "./svd_spec.ts";
import { specParams } from "./unet_spec.ts";

export { svdAvailableTaps, type SvdBuildOptions, type SvdModulationTarget } from "./svd_graph.ts";

/** Options of {@link SvdUNet.load}. */
export interface SvdUNetLoadOptions extends SvdBuildOptions {
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
  /** Largest number of videos sent to onnxruntime at once (frames of one video are never split). */
  microBatch?: number;
}

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
  taps: Record<string, Tensor<"F32">>;
}

function describe(o: SvdUNetLoadOptions): string {
  const parts = ["svd_unet"];
  if (o.truncate) parts.push("truncated");
  if (o.modulationPosition !== undefined && o.modulationPosition !== null) {
    parts.push(
      `mod${o.modulationPosition}${o.modulationTargets ? `(${o.modulationTargets.join("+")})` : ""}`,
    );
  }
  if (o.injectPositions?.length) parts.push(`inj${o.injectPositions.join(",")}`);
  if (o.taps?.length) parts.push(`taps${o.taps.length}`);
  if (o.dtype === "fp16") parts.push("fp16");
  return parts.join(":");
}

/** A loaded SVD UNet variant. */
export class SvdUNet {
  private constructor(
    readonly layout: SvdLayout,
    readonly options: SvdUNetLoadOptions,
    readonly graph: CachedGraph,
    readonly session: Session,
    readonly variantName: string,
  ) {}

  /** Load `root`: a diffusers SVD pipeline folder, or a folder holding unet/ (or the unet files themselves). */
  static async load(root: string, opts: SvdUNetLoadOptions = {}): Promise<SvdUNet> {
    expectPipeline(root, "svd");
    const comp = findComponent(root, "unet", { variant: opts.weightsVariant });
    const layout = parseSvdUNetConfig(comp.config, comp.configPath);
    checkSvdBuildOptions(layout, opts);
    const weights = new SafetensorsWeights(comp.weightsPath);
    try {
      weights.validate(svdUnetSpec(layout), { configPath: comp.configPath });
      return await SvdUNet.fromWeights(layout, weights, { ...opts, configJson: comp.config });
    } finally {
      weights.close();
    }
  }

  /** Build/load a variant from an already validated weight source (benchmarks use random weights). */
  static async fromWeights(
    layout: SvdLayout,
    weights: WeightSource,
    opts: SvdUNetLoadOptions & { configJson?: unknown },
  ): Promise<SvdUNet> {
    checkSvdBuildOptions(layout, opts);
    const dtype = opts.dtype === "fp16" ? "F16" : "F32";
    const build: SvdBuildOptions = {
      taps: [...(opts.taps ?? [])].sort(),
      modulationPosition: opts.modulationPosition ?? null,
      modulationTargets: [...(opts.modulationTargets ?? ["spatial", "temporal"])].sort(),
      injectPositions: [...(opts.injectPositions ?? [])].sort((a, b) => a - b),
      truncate: opts.truncate ?? false,
    };
    const graph = cachedGraph({
      name: "svd_unet",
      key: { config: opts.configJson ?? layout, weights: weights.identity, build },
      dir: opts.cacheDir,
      dtype,
      weightBytes: specParams(svdUnetSpec(layout)) * (dtype === "F16" ? 2 : 4),
      externalThreshold: opts.externalThreshold,
      attention: opts.attention,
    }, (g) => buildSvdUNetGraph(g, weights, layout, build));
    const variantName = opts.variantName ?? describe(opts);
    const session = await createSession({ path: graph.path }, {
      provider: opts.provider,
      threads: opts.threads,
      label: variantName,
    });
    return new SvdUNet(layout, opts, graph, session, variantName);
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
    const t = typeof input.timestep === "number"
      ? new Float32Array(B).fill(input.timestep)
      : Float32Array.from(input.timestep);
    if (t.length !== B) fail("svd_unet.run", `timestep has ${t.length} values for ${B} videos`);
    const feeds: Record<string, Tensor> = {
      sample: input.sample,
      timestep: f32([B], t),
      context: input.context,
      added_time_ids: addedIds(input.addedTimeIds, B, this.layout.numAddedIds),
    };
    const names = this.session.inputNames;
    if (names.includes("modulation")) {
      if (!input.modulation) {
        fail("svd_unet.run", `variant ${this.variantName} needs a modulation input [B·F, h·w, 1]`);
      }
      feeds.modulation = input.modulation;
    }
    for (const n of names) {
      if (!n.startsWith("inject.")) continue;
      const tap = `up.${n.slice("inject.".length)}`;
      const v = input.injected?.[tap];
      if (!v) fail("svd_unet.run", `variant ${this.variantName} needs injected tensor ${tap}`);
      feeds[n] = v;
    }
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
    const mb = Math.max(1, Math.min(B, opts.microBatch ?? this.options.microBatch ?? B));
    const parts: Record<string, Tensor>[] = [];
    for (let i = 0; i < B; i += mb) {
      const j = Math.min(B, i + mb);
      const sub: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) sub[k] = mb === B ? v : rows(v, i * per[k], j * per[k]);
      const t0 = performance.now();
      parts.push(await this.session.run(sub));
      evaluations.add(this.variantName, (j - i) * F, performance.now() - t0);
    }
    const out: Record<string, Tensor<"F32">> = {};
    for (const k of Object.keys(parts[0])) {
      // α taps are weights, not batch rows: the same in every micro-batch.
      out[k] = parts.length === 1 || k.endsWith("time_mixer_alpha")
        ? toF32(parts[0][k])
        : concat0(parts.map((p) => toF32(p[k])));
    }
    const { v, ...taps } = out;
    return { v, taps };
  }

  /** Positions whose temporal q/k this variant expects as injection inputs. */
  get injectPositions(): readonly number[] {
    return this.options.injectPositions ?? [];
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.session.release();
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
