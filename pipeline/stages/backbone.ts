/**
 * The diffusion backbone as the stages see it: a process-wide pool of loaded models (sessions are expensive, so
 * every stage instance of a run shares them) and a {@link UNetRunner} that picks the right UNet graph variant
 * for each request (plain, tapped, truncated, modulated+injected). Stages stay pure: the pool only memoises
 * model loading; it holds no results.
 * @module
 */
import * as path from "node:path";
import { UNet, type UNetLoadOptions } from "../backbone/models/unet.ts";
import { loadVae, type Vae } from "../backbone/models/autoencoder.ts";
import { emptyPromptEmbedding } from "../backbone/models/prompt_embedding.ts";
import type { Provider } from "../backbone/runtime.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { UNetRequest, UNetResult, UNetRunner } from "./passes.ts";

/** Backbone params as stages receive them (config group `backbone`). */
export interface BackboneParams {
  kind: "tiny" | "sd" | "svd";
  weights: string;
  provider?: Provider;
  dtype?: "fp32" | "fp16";
}

/** Samples per ONNX run; bounds activation memory (a batch is split into micro-batches). */
const MICRO_BATCH = 28;

const pool = new Map<string, Promise<unknown>>();

function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
  let p = pool.get(key) as Promise<T> | undefined;
  if (!p) {
    p = make();
    pool.set(key, p);
    p.catch(() => pool.delete(key));
  }
  return p;
}

function graphCacheDir(): string | undefined {
  return Deno.env.get("VIDSEG_GRAPH_CACHE") ?? undefined;
}

/** A UNet variant of `b`, loaded once per process. */
export function unetVariant(b: BackboneParams, opts: UNetLoadOptions): Promise<UNet> {
  const full: UNetLoadOptions = {
    ...opts,
    provider: b.provider,
    dtype: b.dtype,
    microBatch: MICRO_BATCH,
    cacheDir: graphCacheDir(),
  };
  return memo(`unet|${path.resolve(b.weights)}|${JSON.stringify(full)}`, () => UNet.load(b.weights, full));
}

/** The model's VAE (KL or TAESD, from `vae/config.json`), loaded once per process. */
export function vaeOf(b: BackboneParams, decoder: "vae" | "taesd" = "vae"): Promise<Vae> {
  // "taesd" = the fast preview decoder shipped with the embedded model; for a KL model it needs a TAESD folder.
  const folder = decoder === "taesd" ? taesdFolder() : b.weights;
  return memo(`vae|${path.resolve(folder)}|${b.provider}`, () => loadVae(folder, { provider: b.provider, maxBatch: 14 }));
}

/** Folder of the TAESD weights that ship with the repo (the embedded model's VAE). */
export function taesdFolder(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../data/models/tiny-ldm/vae");
}

/** The conditional context: embedding of "" [1, 77, D] (or the embedded model's learned one). */
export function condOf(b: BackboneParams): Promise<Tensor<"F32">> {
  return memo(`cond|${path.resolve(b.weights)}`, () => emptyPromptEmbedding(b.weights, { provider: b.provider }));
}

/** Drop every loaded model (tests, and long runs between phases). */
export function releaseModels(): void {
  pool.clear();
}

/**
 * A {@link UNetRunner} over the graph variants a stage needs. The variant is chosen from the request:
 * modulation/injection inputs → the modulated variant; taps without ε → the truncated tap variant; taps with ε →
 * the recording variant; otherwise the plain one.
 */
export class VariantRunner implements UNetRunner {
  constructor(
    private readonly b: BackboneParams,
    private readonly modulationPosition: number,
    private readonly injectPositions: readonly number[],
  ) {}

  async run(req: UNetRequest): Promise<UNetResult> {
    const taps = [...(req.taps ?? [])].sort();
    let opts: UNetLoadOptions;
    if (req.modulation || req.injected) {
      opts = {
        modulationPosition: req.modulation ? this.modulationPosition : null,
        injectPositions: req.injected ? [...this.injectPositions] : [],
        taps,
      };
    } else if (taps.length && req.needEps === false) {
      opts = { taps, truncate: true };
    } else {
      opts = { taps };
    }
    const unet = await unetVariant(this.b, opts);
    const out = await unet.run({
      sample: req.sample,
      timestep: req.timestep,
      context: req.context,
      modulation: req.modulation,
      injected: req.injected,
    });
    return { eps: out.eps, taps: out.taps };
  }
}
