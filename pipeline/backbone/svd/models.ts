/**
 * The SVD family's models (`backbone.kind: svd`, docs/method.md §1.2), loaded once per process through the pool
 * (UNet variants, temporal VAE, CLIP image encoder), and the per-batch image conditioning: the CLIP image embedding of the
 * batch's FIRST frame and the VAE latent of that frame with cond_aug noise augmentation.
 * @module
 */
import * as path from "node:path";
import { SvdUNet, type SvdUNetLoadOptions } from "./unet.ts";
import { TemporalVae } from "../vae/temporal.ts";
import { ClipVisionModel } from "../clip/vision.ts";
import { gaussianNoise } from "../sampler/noise.ts";
import {
  augmentConditioningFrame,
  type SvdConditioning,
  VIDSEG_SVD_CONDITIONING,
} from "../sampler/svd.ts";
import { resizeBicubicPil } from "../../tensor/ops.ts";
import { f32, type Tensor } from "../../tensor/tensor.ts";
import type { BackboneParams } from "../types.ts";
import { graphCacheDir, memo, taesdFolder, vaeBatch } from "../pool.ts";
import { loadVae, type Vae } from "../vae/autoencoder.ts";
import { framesToImages01, gatherFrames } from "../frames.ts";

/** Frames per UNet run on CPU (the SD runner's micro-batch); SVD runs whole videos, so ⌊28 / F⌋ videos. */
const FRAMES_PER_RUN = 28;

/**
 * Offset of the conditioning-frame noise stream from `seed`: the reference re-seeds every batch, so every batch
 * gets the same augmentation noise; it must not be the ε stream (seed itself) or the two would be correlated.
 */
export const COND_NOISE_SEED_OFFSET = 1_000_003;

/** An SVD UNet variant of `b`, loaded once per process (videos per run bounded by the CPU micro-batch). */
export function svdUNetOf(b: BackboneParams, opts: SvdUNetLoadOptions, frames: number): Promise<SvdUNet> {
  const full: SvdUNetLoadOptions = {
    ...opts,
    provider: b.provider,
    dtype: b.dtype,
    microBatch: b.provider === "cuda" ? undefined : Math.max(1, Math.floor(FRAMES_PER_RUN / frames)),
    cacheDir: graphCacheDir(),
  };
  return memo(
    `svdunet|${path.resolve(b.weights)}|${JSON.stringify(full)}`,
    () => SvdUNet.load(b.weights, full),
  );
}

/** The temporal VAE of an SVD folder (encode frames, decode frame by frame), loaded once per process. */
export function svdVaeOf(b: BackboneParams, maxBatch: number): Promise<TemporalVae> {
  return memo(
    `svdvae|${path.resolve(b.weights)}|${b.provider}|${maxBatch}`,
    () => TemporalVae.load(b.weights, { provider: b.provider, maxBatch }),
  );
}

/** The CLIP image encoder (`image_encoder/`) of an SVD folder, loaded once per process. */
export function svdImageEncoderOf(b: BackboneParams): Promise<ClipVisionModel> {
  return memo(
    `svdclip|${path.resolve(b.weights)}|${b.provider}`,
    () => ClipVisionModel.load(b.weights, { provider: b.provider }),
  );
}

/** The conditioning frame's augmentation noise ε [1, 3, H, W] (the invert stage draws it with ε). */
export function svdCondNoise(seed: number, H: number, W: number): Tensor<"F32"> {
  return gaussianNoise(seed + COND_NOISE_SEED_OFFSET, [1, 3, H, W]);
}

/**
 * The image conditioning of one batch from its frames U8 [F, H, W, 3] (docs/method.md §1.2): the CLIP image
 * embedding [1, 1, D] of frame 0 (resized to the encoder's S×S with PIL bicubic; sgm feeds the clean frame) and
 * the unscaled posterior mean of frame 0 after noise augmentation x + cond_aug·ε in [−1, 1] pixels (ε =
 * `condNoise` from {@link svdCondNoise}, the same for every batch). Micro-conditioning: fps_id 14, motion
 * bucket 127, cond_aug 0.02.
 */
export async function svdConditioning(
  b: BackboneParams,
  frames: Tensor<"U8">,
  condNoise: Tensor<"F32">,
): Promise<SvdConditioning> {
  const [, H, W] = frames.shape;
  const first = gatherFrames(frames, [0]);
  const clip = await svdImageEncoderOf(b);
  const S = clip.cfg.imageSize;
  const small = H === S && W === S ? first : resizeBicubicPil(
    { dtype: "U8", shape: [H, W, 3], data: first.data },
    S,
    S,
  );
  const embedding = await clip.svdContext(
    framesToImages01({ dtype: "U8", shape: [1, S, S, 3], data: small.data }),
  );
  const img01 = framesToImages01(first);
  const img11 = f32(img01.shape, img01.data.map((v) => 2 * v - 1));
  const micro = VIDSEG_SVD_CONDITIONING;
  const aug = augmentConditioningFrame(img11, micro.condAug, condNoise);
  const vae = await svdVaeOf(b, vaeBatch(b.provider));
  return { latent: await vae.encodeMean(aug), embedding, micro };
}

/** The decoder of modulated latents: the temporal VAE, or the shipped TAESD preview decoder (frame by frame). */
export function svdDecoderOf(b: BackboneParams, decoder: "vae" | "taesd"): Promise<Vae> {
  if (decoder === "vae") return svdVaeOf(b, vaeBatch(b.provider));
  const folder = taesdFolder();
  return memo(
    `vae|${path.resolve(folder)}|${b.provider}`,
    () => loadVae(folder, { provider: b.provider, maxBatch: vaeBatch(b.provider) }),
  );
}
