/**
 * Classifier-free guidance over a doubled batch, as sgm's `VanillaCFG` / `LinearPredictionGuider` and diffusers
 * do it: the model sees [x; x] (first half unconditional, second half conditional) and the guided prediction is
 * ε̂ = ε_u + s·(ε_c − ε_u). Linear in the prediction, so it is the same for ε, v or denoised outputs.
 * Scale 1 means no guidance (only the conditional half matters, but the doubled batch is still evaluated —
 * callers that want to skip the uncond half should not wrap the model).
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import type { EpsModel } from "./euler.ts";

/** Guidance scale: one number, or one per sample of the (undoubled) batch, e.g. per video frame. */
export type GuidanceScale = number | ArrayLike<number>;

/** [x; x] along the first axis: the batch the model sees under guidance. */
export function doubleBatch(x: Tensor<"F32">): Tensor<"F32"> {
  const out = new Float32Array(2 * x.data.length);
  out.set(x.data, 0);
  out.set(x.data, x.data.length);
  return f32([2 * x.shape[0], ...x.shape.slice(1)], out);
}

/**
 * Combine a doubled-batch prediction [uncond (B); cond (B)] into the guided [B, …] one:
 * out_b = u_b + s_b·(c_b − u_b), with s_b = scale (number) or scale[b] (per-sample vector of length B).
 */
export function combineCfg(doubled: Tensor<"F32">, scale: GuidanceScale): Tensor<"F32"> {
  const b2 = doubled.shape[0];
  if (b2 % 2 !== 0) throw new Error(`cfg: doubled batch has odd size ${b2}`);
  const B = b2 / 2;
  const inner = doubled.data.length / b2;
  if (typeof scale !== "number" && scale.length !== B) {
    throw new Error(`cfg: ${scale.length} guidance scales for a batch of ${B}`);
  }
  const half = B * inner;
  const out = new Float32Array(half);
  const d = doubled.data;
  for (let b = 0; b < B; b++) {
    const s = typeof scale === "number" ? scale : scale[b];
    for (let j = b * inner, e = j + inner; j < e; j++) {
      const u = d[j];
      out[j] = u + s * (d[half + j] - u);
    }
  }
  return f32([B, ...doubled.shape.slice(1)], out);
}

/** SVD `LinearPredictionGuider` scales: linspace(min, max, frames), one per frame (1.0 → 2.5 for SVD). */
export function linearFrameScales(frames: number, min: number, max: number): Float64Array {
  const s = new Float64Array(frames);
  for (let i = 0; i < frames; i++) s[i] = frames === 1 ? min : min + (i * (max - min)) / (frames - 1);
  return s;
}

/**
 * Wrap a model that takes a doubled batch (its own [uncond; cond] conditioning) into an {@link EpsModel} over
 * the plain batch: doubles the input, evaluates once, combines with {@link combineCfg}.
 */
export function guided(doubledModel: EpsModel, scale: GuidanceScale): EpsModel {
  return async (modelInput, info) => combineCfg(await doubledModel(doubleBatch(modelInput), info), scale);
}
