/**
 * The SD family's models, loaded once per process through the pool (UNet graph variants, VAE, the empty-prompt
 * context), a {@link UNetRunner} that picks the UNet graph variant for each request (plain, tapped, truncated,
 * modulated+injected, prefix/suffix), and the memory one UNet row needs.
 * @module
 */
import * as path from "node:path";
import { UNet, type UNetLoadOptions } from "./unet.ts";
import { parseUNetConfig, type UNetLayout } from "./config.ts";
import { prefixTensorDims } from "./split.ts";
import { findComponent } from "../weights/diffusers.ts";
import { loadVae, type Vae } from "../vae/autoencoder.ts";
import { emptyPromptEmbedding } from "../clip/prompt_embedding.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { UNetRequest, UNetResult, UNetRunner } from "./passes.ts";
import type { BackboneParams } from "../types.ts";
import { graphCacheDir, loadedModels, memo, taesdFolder, vaeBatch } from "../pool.ts";

/** Samples per ONNX run; bounds activation memory (a batch is split into micro-batches). */
export const MICRO_BATCH = 28;

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

/** The model's VAE (KL or TAESD, from `vae/config.json`), or the shipped TAESD preview decoder, loaded once. */
export function vaeOf(b: BackboneParams, decoder: "vae" | "taesd" = "vae"): Promise<Vae> {
  // "taesd" = the fast preview decoder shipped with the embedded model; for a KL model it needs a TAESD folder.
  const folder = decoder === "taesd" ? taesdFolder() : b.weights;
  return memo(
    `vae|${path.resolve(folder)}|${b.provider}`,
    () => loadVae(folder, { provider: b.provider, maxBatch: vaeBatch(b.provider) }),
  );
}

/** The conditional context: embedding of "" [1, 77, D] (or the embedded model's learned one). */
export function condOf(b: BackboneParams): Promise<Tensor<"F32">> {
  return memo(`cond|${path.resolve(b.weights)}`, () => emptyPromptEmbedding(b.weights, { provider: b.provider }));
}

/** The UNet layout of `b` (config only, no weights loaded). */
export function unetLayoutOf(b: BackboneParams): UNetLayout {
  const comp = findComponent(b.weights, "unet");
  return parseUNetConfig(comp.config, comp.configPath);
}

/** Every UNet variant loaded in this process so far (the bench maps evaluation counters to MAC counts). */
export function loadedUNets(): Promise<UNet[]> {
  return loadedModels<UNet>("unet|");
}

/** Estimated bytes one UNet row needs, by what holds them (for sizing batches to a memory budget). */
export interface RowBytes {
  /** Injected attention tensors of one step (attn1 q, k and attn2 out at every injected position). */
  injected: number;
  /** Prefix tensors of a split at `splitAt`. */
  prefix: number;
  /** onnxruntime activations: ~4× the largest per-row tensor (the GEGLU hidden, 8C × tokens), measured on CPU. */
  activations: number;
}

/** {@link RowBytes} for a latent of h×w (fp32, 4 bytes per value). */
export function unetRowBytes(l: UNetLayout, h: number, w: number, injectPositions: readonly number[], splitAt: number): RowBytes {
  const per = l.layersPerBlock + 1, n = l.up.length;
  // Up level j runs at down level n−1−j: the latent halved n−1−j times (ceil, as the stride-2 convs).
  const tokensAt = (level: number) => {
    let a = h, b = w;
    for (let i = 0; i < level; i++) (a = Math.ceil(a / 2)), (b = Math.ceil(b / 2));
    return a * b;
  };
  let injected = 0, activations = 0;
  for (const p of injectPositions) {
    const j = Math.floor(p / per);
    injected += 3 * tokensAt(n - 1 - j) * l.up[j].outCh * 4;
  }
  l.up.forEach((lvl, j) => (activations = Math.max(activations, 4 * tokensAt(n - 1 - j) * 8 * lvl.outCh * 4)));
  const prefix = prefixTensorDims(l, splitAt).reduce((a, t) => a + tokensAt(t.level) * t.ch * 4, 0);
  return { injected, prefix, activations };
}

/**
 * A {@link UNetRunner} over the graph variants a stage needs. The variant is chosen from the request:
 * prefix inputs → the suffix variant resuming at the split position (= the modulation position); modulation/
 * injection inputs → the modulated variant; taps without ε → the truncated tap variant; taps with ε → the
 * recording variant (exposing the prefix when asked); otherwise the plain one.
 */
export class VariantRunner implements UNetRunner {
  constructor(
    private readonly b: BackboneParams,
    private readonly modulationPosition: number,
    private readonly injectPositions: readonly number[],
  ) {}

  /** Up-path position where prefix reuse splits the UNet: the modulated block's input. */
  get splitPosition(): number {
    return this.modulationPosition;
  }

  async run(req: UNetRequest): Promise<UNetResult> {
    const taps = [...(req.taps ?? [])].sort();
    let opts: UNetLoadOptions;
    if (req.prefix) {
      const at = this.splitPosition;
      opts = {
        resumeAt: at,
        modulationPosition: req.modulation ? this.modulationPosition : null,
        injectPositions: req.injected ? this.injectPositions.filter((p) => p >= at) : [],
        taps,
      };
    } else if (req.modulation || req.injected) {
      opts = {
        modulationPosition: req.modulation ? this.modulationPosition : null,
        injectPositions: req.injected ? [...this.injectPositions] : [],
        taps,
      };
    } else if (req.exposePrefix) {
      opts = { taps, exposePrefixAt: this.splitPosition };
    } else if (taps.length && req.needEps === false) {
      opts = { taps, truncate: true };
    } else {
      opts = { taps };
    }
    const unet = await unetVariant(this.b, opts);
    const out = await unet.run({
      sample: req.sample,
      prefix: req.prefix,
      timestep: req.timestep,
      context: req.context,
      modulation: req.modulation,
      injected: req.injected,
      microBatch: req.microBatch,
    });
    const prediction = unet.predictionType;
    return out.prefix
      ? { eps: out.eps, taps: out.taps, prefix: out.prefix, prediction }
      : { eps: out.eps, taps: out.taps, prediction };
  }
}
