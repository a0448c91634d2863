/**
 * Deterministic Euler sampler in variance-exploding coordinates (x = x0 + σ·ε), k-diffusion style: pure
 * functions over (model, x, schedule). For an ε-prediction model the step x ← x + (σ_{i+1} − σ_i)·ε̂ with model
 * input x/√(σ_i² + 1) is sgm's `EulerEDMSampler` with s_churn = 0 and equals DDIM η = 0 (docs/method.md §3.2).
 * The sampler knows nothing about guidance (see `cfg.ts`) or segmentation (the step callback lets the caller
 * observe or replace x, e.g. for latent blending).
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import type { Schedule } from "./schedule.ts";

/** What the model is told about the step it is evaluated for. */
export interface StepInfo {
  /** Step index i (σ_i → σ_{i+1}). */
  step: number;
  /** σ_i. */
  sigma: number;
  /** σ_{i+1}. */
  sigmaNext: number;
  /** The UNet time input of this step (`schedule.timesteps[i]`). */
  timestep: number;
}

/**
 * An ε-prediction model: given the scaled input x/√(σ²+1) (same shape as x), returns ε̂ (same shape).
 * It must not keep or modify `modelInput` after returning (a fresh tensor is passed each step).
 */
export type EpsModel = (modelInput: Tensor<"F32">, info: StepInfo) => Promise<Tensor<"F32">> | Tensor<"F32">;

/**
 * Called after step i with the new latent (a fresh tensor the caller may keep). Returning a tensor replaces x
 * for the following steps (used for latent blending); returning nothing keeps x.
 */
export type StepCallback = (
  step: number,
  x: Tensor<"F32">,
) => Tensor<"F32"> | void | undefined | Promise<Tensor<"F32"> | void | undefined>;

/** Options of {@link sampleEuler}. */
export interface EulerOptions {
  /** First step to run (default 0). Starting at t_m means x must already be at noise level σ_{t_m}. */
  startIndex?: number;
  /** One past the last step to run (default n = schedule length, i.e. down to σ = 0). */
  endIndex?: number;
  callback?: StepCallback;
}

function checkSame(a: Tensor<"F32">, b: Tensor<"F32">, what: string): void {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`euler: ${what} has shape [${b.shape}], expected [${a.shape}]`);
  }
}

/** c_in·x = x/√(σ² + 1): the UNet input for noise level σ (EpsScaling and VScalingWithEDMcNoise alike). */
export function scaleModelInput(x: Tensor<"F32">, sigma: number): Tensor<"F32"> {
  const c = 1 / Math.sqrt(sigma * sigma + 1);
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i] * c;
  return f32(x.shape, out);
}

/** One Euler step for an ε-model: x + (σ_next − σ)·ε. */
export function eulerStep(
  x: Tensor<"F32">,
  eps: Tensor<"F32">,
  sigma: number,
  sigmaNext: number,
): Tensor<"F32"> {
  checkSame(x, eps, "eps");
  const dt = sigmaNext - sigma;
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i] + dt * eps.data[i];
  return f32(x.shape, out);
}

/**
 * Convert a v-prediction (SVD, `VScalingWithEDMcNoise`: D = x/(σ²+1) − σ/√(σ²+1)·v) to the ε the Euler step
 * needs: ε = (x − D)/σ = (σ·x_in + v)/√(σ²+1), where x_in = x/√(σ²+1) is the model input the
 * {@link EpsModel} receives.
 */
export function vToEps(modelInput: Tensor<"F32">, v: Tensor<"F32">, sigma: number): Tensor<"F32"> {
  checkSame(modelInput, v, "v");
  const b = 1 / Math.sqrt(sigma * sigma + 1);
  const out = new Float32Array(v.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (sigma * modelInput.data[i] + v.data[i]) * b;
  return f32(v.shape, out);
}

/**
 * Run Euler steps `startIndex .. endIndex−1` of `schedule` from x (at noise level σ_startIndex). Returns the
 * latent at σ_endIndex. x itself is never modified.
 */
export async function sampleEuler(
  model: EpsModel,
  x: Tensor<"F32">,
  schedule: Schedule,
  opts: EulerOptions = {},
): Promise<Tensor<"F32">> {
  const n = schedule.timesteps.length;
  const start = opts.startIndex ?? 0, end = opts.endIndex ?? n;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)) {
    throw new RangeError(`sampleEuler: step range [${start}, ${end}) is not inside 0..${n}`);
  }
  if (schedule.sigmas.length !== n + 1) {
    throw new Error(`sampleEuler: schedule needs ${n + 1} sigmas, has ${schedule.sigmas.length}`);
  }
  let cur = x;
  for (let i = start; i < end; i++) {
    const sigma = schedule.sigmas[i], sigmaNext = schedule.sigmas[i + 1];
    const eps = await model(scaleModelInput(cur, sigma), {
      step: i,
      sigma,
      sigmaNext,
      timestep: schedule.timesteps[i],
    });
    cur = eulerStep(cur, eps, sigma, sigmaNext);
    if (opts.callback) {
      const replaced = await opts.callback(i, cur);
      if (replaced) {
        checkSame(x, replaced, "callback result");
        cur = replaced;
      }
    }
  }
  return cur;
}
