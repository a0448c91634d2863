/**
 * Session plumbing shared by the SD {@link UNet} (`sd/unet.ts`) and the SVD {@link SvdUNet} (`svd/unet.ts`): the
 * runtime/cache load options, opening a validated `unet/` component, building (or reusing from the graph cache) a
 * variant and creating its session, the optional hook feeds (`modulation`, `inject.*`), and running a batch in
 * micro-batches with evaluation counting. What differs between the two UNets (config, spec, graph builder, input
 * layout) is passed in.
 * @module
 */
import { fail } from "../errors.ts";
import { concat0, rows, type Tensor, toF32 } from "../tensor/tensor.ts";
import type { GraphBuilder } from "./onnx/builder.ts";
import { type CachedGraph, cachedGraph, type CachedGraphOptions } from "./onnx/cache.ts";
import { openSharedGraph } from "./onnx/optimized_cache.ts";
import { createSession, evaluations, type Provider, type Session } from "./runtime.ts";
import { expectPipeline, findComponent, type PipelineKind } from "./weights/diffusers.ts";
import { type ParamSpec, SafetensorsWeights, type WeightSource } from "./weights/weight_map.ts";
import { specParams } from "./sd/spec.ts";

/** Runtime, precision and graph-cache options of a UNet variant (SD and SVD). */
export interface VariantRuntimeOptions {
  provider?: Provider;
  /** Weight/compute precision of the graph (IO stays float32). Default fp32. */
  dtype?: "fp32" | "fp16";
  /** Prefer the `.fp16.safetensors` weights file of the folder. */
  weightsVariant?: "fp16";
  /** Graph cache directory (default results/cache/graphs). */
  cacheDir?: string;
  /** Model weight bytes at which external data is used (default 1.8e9; 0 forces it; only with `shareWeights: false`). */
  externalThreshold?: number;
  /** All variants of the model reference one weights store (default true); false embeds/owns a copy each. */
  shareWeights?: boolean;
  threads?: number;
  /** Name of this variant in the evaluation counters (default derived from the options). */
  variantName?: string;
  /** Attention kernel: onnxruntime's fused MultiHeadAttention ("mha", default) or plain ops ("matmul"). */
  attention?: "mha" | "matmul";
  /**
   * Largest batch sent to onnxruntime at once (SD: samples; SVD: videos, whose frames are never split); bigger
   * batches are split and the outputs concatenated (bounds activation memory, e.g. 28 samples at 832×448).
   * Default: no splitting.
   */
  microBatch?: number;
}

/** Build options every UNet variant has (the parts of the default variant name they contribute). */
interface CommonBuildOptions {
  taps?: readonly string[];
  modulationPosition?: number | null;
  injectPositions?: readonly number[];
  truncate?: boolean;
  dtype?: "fp32" | "fp16";
}

/**
 * Default counter name of a variant, e.g. "unet:mod7:taps3": `base`, then truncation, modulation position (with
 * `modSuffix`), injected positions, tap count, the `extra` parts, and fp16.
 */
export function describeVariant(
  base: string,
  o: CommonBuildOptions,
  modSuffix = "",
  extra: string[] = [],
): string {
  const parts = [base];
  if (o.truncate) parts.push("truncated");
  if (o.modulationPosition !== undefined && o.modulationPosition !== null) {
    parts.push(`mod${o.modulationPosition}${modSuffix}`);
  }
  if (o.injectPositions?.length) parts.push(`inj${o.injectPositions.join(",")}`);
  if (o.taps?.length) parts.push(`taps${o.taps.length}`);
  parts.push(...extra);
  if (o.dtype === "fp16") parts.push("fp16");
  return parts.join(":");
}

/** What differs between the SD and the SVD UNet when opening a `unet/` component. */
export interface UNetFamily<L, O> {
  /** Pipeline kind `model_index.json` must declare (when present). */
  kind: PipelineKind;
  /** Parse and validate `unet/config.json`. */
  parse(config: Record<string, unknown>, configPath: string): L;
  /** Check the build options against the layout (one UserError line). */
  check(layout: L, opts: O): void;
  /** Parameter set the weights must have. */
  spec(layout: L): ParamSpec;
}

/**
 * Open the `unet/` component of `root` (or `root` itself): check the pipeline kind, parse the config, check the
 * options, validate the weights against the spec and hand them to `use`; the weights are closed afterwards.
 */
export async function withUNetWeights<L, O, R>(
  root: string,
  family: UNetFamily<L, O>,
  opts: O & VariantRuntimeOptions,
  use: (layout: L, weights: WeightSource, configJson: Record<string, unknown>) => Promise<R>,
): Promise<R> {
  expectPipeline(root, family.kind);
  const comp = findComponent(root, "unet", { variant: opts.weightsVariant });
  const layout = family.parse(comp.config, comp.configPath);
  family.check(layout, opts);
  const weights = new SafetensorsWeights(comp.weightsPath);
  try {
    weights.validate(family.spec(layout), { configPath: comp.configPath });
    return await use(layout, weights, comp.config);
  } finally {
    weights.close();
  }
}

/** One graph variant to open: its cache name, layout, weights, normalised build options, spec and builder. */
export interface VariantGraph<L, B> {
  /** Cache file-name prefix ("unet", "svd_unet"). */
  name: string;
  layout: L;
  weights: WeightSource;
  /** Normalised build options (part of the cache key). */
  build: B;
  spec: ParamSpec;
  builder: (g: GraphBuilder, w: WeightSource, layout: L, build: B) => void;
}

/** Build options as they enter the cache key: sorted lists, explicit defaults. */
export function normalisedBuild(o: CommonBuildOptions): {
  taps: string[];
  modulationPosition: number | null;
  injectPositions: number[];
  truncate: boolean;
} {
  return {
    taps: [...(o.taps ?? [])].sort(),
    modulationPosition: o.modulationPosition ?? null,
    injectPositions: [...(o.injectPositions ?? [])].sort((a, b) => a - b),
    truncate: o.truncate ?? false,
  };
}

/** A built (or cached) variant graph with its session and counter name. */
export interface OpenVariant {
  graph: CachedGraph;
  session: Session;
  variantName: string;
}

/**
 * Build the variant (or reuse it from the graph cache, keyed by `opts.configJson` — or the layout —, the weights'
 * identity and the build options) and create its session.
 */
export async function openVariant<L, B>(
  v: VariantGraph<L, B>,
  opts: VariantRuntimeOptions & { configJson?: unknown },
  defaultName: string,
): Promise<OpenVariant> {
  const dtype = opts.dtype === "fp16" ? "F16" : "F32";
  const cacheOpts: CachedGraphOptions = {
    name: v.name,
    key: { config: opts.configJson ?? v.layout, weights: v.weights.identity, build: v.build },
    dir: opts.cacheDir,
    dtype,
    weightBytes: specParams(v.spec) * (dtype === "F16" ? 2 : 4),
    externalThreshold: opts.externalThreshold,
    attention: opts.attention,
  };
  const build = (g: GraphBuilder) => v.builder(g, v.weights, v.layout, v.build);
  const variantName = opts.variantName ?? defaultName;
  const so = { provider: opts.provider, threads: opts.threads, label: variantName };
  if (opts.shareWeights !== false) {
    // All variants of the model share one weights store (and, on CPU, start from their saved optimised form).
    const { graph, session } = await openSharedGraph(
      { ...cacheOpts, sharedWeights: { weights: v.weights.identity } },
      build,
      so,
    );
    return { graph, session, variantName };
  }
  const graph = cachedGraph(cacheOpts, build);
  const session = await createSession({ path: graph.path }, so);
  return { graph, session, variantName };
}

/** A loaded UNet variant (SD or SVD): layout, options, graph, session; frees the session on release. */
export abstract class LoadedVariant<L, O extends { injectPositions?: readonly number[] }> {
  protected constructor(
    readonly layout: L,
    readonly options: O,
    readonly graph: CachedGraph,
    readonly session: Session,
    readonly variantName: string,
  ) {}

  /** Positions whose tensors this variant expects as injection inputs. */
  get injectPositions(): readonly number[] {
    return this.options.injectPositions ?? [];
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/** One timestep per batch item from a single value or a list (`items` names the batch in the error). */
export function timestepVector(
  timestep: number | readonly number[] | Float32Array,
  B: number,
  where: string,
  items: string,
): Float32Array {
  const t = typeof timestep === "number" ? new Float32Array(B).fill(timestep) : Float32Array.from(timestep);
  if (t.length !== B) fail(where, `timestep has ${t.length} values for ${items}`);
  return t;
}

/**
 * Add the hook inputs the session asks for: `modulation` (whose layout `modulationShape` names in the error) and
 * every `inject.<tap>` (fed from `injected["up.<tap>"]`). A missing one is one UserError line.
 */
export function addHookFeeds(
  feeds: Record<string, Tensor>,
  names: readonly string[],
  input: { modulation?: Tensor<"F32">; injected?: Record<string, Tensor<"F32">> },
  where: string,
  variantName: string,
  modulationShape: string,
): void {
  if (names.includes("modulation")) {
    if (!input.modulation) fail(where, `variant ${variantName} needs a modulation input ${modulationShape}`);
    feeds.modulation = input.modulation;
  }
  for (const n of names) {
    if (!n.startsWith("inject.")) continue;
    const tap = `up.${n.slice("inject.".length)}`;
    const v = input.injected?.[tap];
    if (!v) fail(where, `variant ${variantName} needs injected tensor ${tap}`);
    feeds[n] = v;
  }
}

/** How {@link runMicroBatched} splits and counts a batch. */
export interface MicroBatchPlan {
  /** Batch items per onnxruntime run (clamped to 1..B; default B). */
  microBatch?: number;
  /** Rows per batch item of each feed (default 1). */
  rowsPer?: Record<string, number>;
  /** Sample-evaluations one batch item counts (default 1; SVD: frames per video). */
  samplesPerItem?: number;
  /** Outputs that are not batch rows (the same in every run): taken from the first run. */
  shared?: (output: string) => boolean;
}

/**
 * Run `feeds` (B batch items) through `session` in micro-batches, counting evaluations under `variantName`, and
 * concatenate the outputs back (widened to float32).
 */
export async function runMicroBatched(
  session: Session,
  variantName: string,
  feeds: Record<string, Tensor>,
  B: number,
  plan: MicroBatchPlan = {},
): Promise<Record<string, Tensor<"F32">>> {
  const mb = Math.max(1, Math.min(B, plan.microBatch ?? B));
  const parts: Record<string, Tensor>[] = [];
  for (let i = 0; i < B; i += mb) {
    const j = Math.min(B, i + mb);
    const sub: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const per = plan.rowsPer?.[k] ?? 1;
      sub[k] = mb === B ? v : rows(v, i * per, j * per);
    }
    const t0 = performance.now();
    parts.push(await session.run(sub));
    evaluations.add(variantName, (j - i) * (plan.samplesPerItem ?? 1), performance.now() - t0);
  }
  const out: Record<string, Tensor<"F32">> = {};
  for (const k of Object.keys(parts[0])) {
    out[k] = parts.length === 1 || plan.shared?.(k)
      ? toF32(parts[0][k])
      : concat0(parts.map((p) => toF32(p[k])));
  }
  return out;
}
