/**
 * Stable Video Diffusion conditioning and preconditioning as pure functions (no model): the added time ids, the
 * `VScalingWithEDMcNoise` constants, the UNet input cat(x·c_in, conditioning latent) with its unconditional half,
 * and an {@link EpsModel} adapter so the generic Euler sampler (`euler.ts`) and per-frame linear CFG (`cfg.ts`)
 * drive an SVD network (docs/method.md §1.2, §3; conformance-svd README "Schedule" and "Trajectories").
 *
 * Conventions (sgm, as the reference runs): frames of one video are the sampler's batch [F, 4, h, w]; the network
 * sees diffusers' [B, F, 8, h, w] with B = 2 under guidance ([uncond; cond], uncond = zero image embedding and
 * zero conditioning latent, same added time ids); the conditioning latent is the unscaled posterior mean of the
 * noise-augmented conditioning frame and is NOT multiplied by c_in.
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { combineCfg, type GuidanceScale } from "./cfg.ts";
import { type EpsModel, type StepInfo, vToEps } from "./euler.ts";

/** The added time ids of the SVD UNet, in the order the model takes them. */
export interface SvdMicroConditioning {
  /**
   * The fps id exactly as the model receives it. VidSeg (sgm `fps_id`) passes 14; a diffusers pipeline called
   * with `fps` passes fps − 1 (see {@link fpsIdFromDiffusersFps}).
   */
  fpsId: number;
  /** Motion bucket id (127). */
  motionBucketId: number;
  /** Noise augmentation strength of the conditioning frame (0.02); also an added time id. */
  condAug: number;
}

/** VidSeg's values (`svd_pipeline_vspw.py` defaults): fps_id 14, motion_bucket_id 127, cond_aug 0.02. */
export const VIDSEG_SVD_CONDITIONING: Readonly<SvdMicroConditioning> = {
  fpsId: 14,
  motionBucketId: 127,
  condAug: 0.02,
};

/** diffusers `StableVideoDiffusionPipeline(fps=…)` subtracts 1 before building the ids: the id it sends. */
export function fpsIdFromDiffusersFps(fps: number): number {
  return fps - 1;
}

/** [fps_id, motion_bucket_id, cond_aug] as float32 (the UNet's `added_time_ids` row). */
export function svdAddedTimeIds(c: SvdMicroConditioning = VIDSEG_SVD_CONDITIONING): Float32Array {
  return Float32Array.of(c.fpsId, c.motionBucketId, c.condAug);
}

/** `VScalingWithEDMcNoise` constants for noise level σ. */
export interface VScaling {
  cSkip: number;
  cOut: number;
  cIn: number;
  /** UNet time input 0.25·ln σ. */
  cNoise: number;
}

/**
 * c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1), c_in = 1/√(σ²+1), c_noise = ¼·ln σ; denoised D = c_skip·x + c_out·F_θ.
 * `float32: true` rounds every operation to float32 as sgm does when it runs in float32.
 */
export function vScaling(sigma: number, opts: { float32?: boolean } = {}): VScaling {
  if (!(sigma > 0)) throw new RangeError(`vScaling: σ must be > 0, got ${sigma}`);
  const r = opts.float32 ? Math.fround : (v: number) => v;
  const s = r(sigma), s2p1 = r(r(s * s) + 1), root = r(Math.sqrt(s2p1));
  return {
    cSkip: r(1 / s2p1),
    cOut: r(-s / root),
    cIn: r(1 / root),
    cNoise: r(0.25 * r(Math.log(s))),
  };
}

/** Denoised D = c_skip·x + c_out·v for the network output v at noise level σ (x and v of the same shape). */
export function svdDenoised(x: Tensor<"F32">, v: Tensor<"F32">, sigma: number): Tensor<"F32"> {
  if (x.shape.join() !== v.shape.join()) throw new Error(`svdDenoised: v [${v.shape}] vs x [${x.shape}]`);
  const { cSkip, cOut } = vScaling(sigma);
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = cSkip * x.data[i] + cOut * v.data[i];
  return f32(x.shape, out);
}

/** Conditioning frame augmentation (pixels in [−1, 1]): image + condAug·ε. */
export function augmentConditioningFrame(
  image11: Tensor<"F32">,
  condAug: number,
  noise: Tensor<"F32">,
): Tensor<"F32"> {
  if (image11.shape.join() !== noise.shape.join()) {
    throw new Error(`augmentConditioningFrame: noise [${noise.shape}] vs image [${image11.shape}]`);
  }
  const out = new Float32Array(image11.data.length);
  for (let i = 0; i < out.length; i++) out[i] = image11.data[i] + condAug * noise.data[i];
  return f32(image11.shape, out);
}

/**
 * The network input [B, F, 4 + L, h, w] for scaled latents x·c_in [F, 4, h, w] and the conditioning latent
 * ([L, h, w] or [1, L, h, w], repeated for every frame). `guided`: B = 2, the first video with a zero
 * conditioning latent (unconditional half), the second with it; otherwise B = 1.
 */
export function svdUNetSample(
  modelInput: Tensor<"F32">,
  condLatent: Tensor<"F32">,
  guided: boolean,
): Tensor<"F32"> {
  const [F, C, h, w] = modelInput.shape, plane = h * w;
  const L = condLatent.data.length / plane;
  const cs = condLatent.shape;
  if (!Number.isInteger(L) || cs[cs.length - 1] !== w || cs[cs.length - 2] !== h) {
    throw new Error(`svdUNetSample: conditioning latent [${cs}] does not match frames [${modelInput.shape}]`);
  }
  const B = guided ? 2 : 1, rowLen = (C + L) * plane, video = F * rowLen;
  const out = new Float32Array(B * video);
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < F; f++) {
      const o = b * video + f * rowLen;
      out.set(modelInput.data.subarray(f * C * plane, (f + 1) * C * plane), o);
      if (b === B - 1) out.set(condLatent.data, o + C * plane); // the uncond half keeps zeros
    }
  }
  return f32([B, F, C + L, h, w], out);
}

/** The image embedding [1, S, D] (or [S, D]) as the network context: [[0; e]] under guidance, else [e]. */
export function svdContext(embedding: Tensor<"F32">, guided: boolean): Tensor<"F32"> {
  const s = embedding.shape, S = s.length === 3 ? s[1] : s[0], D = s[s.length - 1];
  if (embedding.data.length !== S * D) throw new Error(`svdContext: expected one embedding, got [${s}]`);
  const out = new Float32Array((guided ? 2 : 1) * S * D);
  out.set(embedding.data, guided ? S * D : 0);
  return f32([guided ? 2 : 1, S, D], out);
}

/** What an SVD network call receives (diffusers `UNetSpatioTemporalConditionModel` inputs). */
export interface SvdNetworkInput {
  /** [B, F, 4 + L, h, w]. */
  sample: Tensor<"F32">;
  /** c_noise per video. */
  timestep: Float32Array;
  /** [B, S, D]. */
  context: Tensor<"F32">;
  /** One row shared by all videos. */
  addedTimeIds: Float32Array;
}

/** An SVD network: v-prediction [B, F, 4, h, w] for the input (the step is given for per-step variants). */
export type SvdNetwork = (input: SvdNetworkInput, info: StepInfo) => Promise<Tensor<"F32">>;

/** Conditioning of one video batch. */
export interface SvdConditioning {
  /** Unscaled VAE latent of the (augmented) conditioning frame, [L, h, w] or [1, L, h, w]. */
  latent: Tensor<"F32">;
  /** Image embedding [1, 1, D]. */
  embedding: Tensor<"F32">;
  /** Default {@link VIDSEG_SVD_CONDITIONING}. */
  micro?: SvdMicroConditioning;
}

/**
 * An {@link EpsModel} over the frames [F, 4, h, w] of one video: builds the network input, calls `network` with
 * c_noise(σ) (the schedule's `timestep`), turns v into ε = (x − D)/σ and, when `guidance` is given (a number or
 * one scale per frame, e.g. `linearFrameScales(F, 1, 2.5)`), evaluates [uncond; cond] in one call and combines
 * them per frame. Guidance is linear, so combining ε equals sgm's combination of D.
 */
export function svdEpsModel(network: SvdNetwork, cond: SvdConditioning, guidance?: GuidanceScale): EpsModel {
  const guided = guidance !== undefined;
  const context = svdContext(cond.embedding, guided);
  const ids = svdAddedTimeIds(cond.micro);
  return async (modelInput, info) => {
    const sample = svdUNetSample(modelInput, cond.latent, guided);
    const B = sample.shape[0], [F, C, h, w] = modelInput.shape;
    const v = await network({
      sample,
      timestep: new Float32Array(B).fill(info.timestep),
      context,
      addedTimeIds: ids,
    }, info);
    const n = F * C * h * w;
    if (v.data.length !== B * n) {
      throw new Error(`svdEpsModel: network returned [${v.shape}] for ${B} × [${modelInput.shape}]`);
    }
    if (!guided) return vToEps(modelInput, f32(modelInput.shape, v.data), info.sigma);
    const eu = vToEps(modelInput, f32(modelInput.shape, v.data.subarray(0, n)), info.sigma);
    const ec = vToEps(modelInput, f32(modelInput.shape, v.data.subarray(n)), info.sigma);
    const both = new Float32Array(2 * n);
    both.set(eu.data, 0);
    both.set(ec.data, n);
    return combineCfg(f32([2 * F, C, h, w], both), guidance);
  };
}
