/**
 * Noise schedules as pure functions (no model, no segmentation).
 *
 * - SD 2.x training schedule: "scaled linear" betas, ᾱ = cumprod(1 − β), σ = √((1 − ᾱ)/ᾱ). sgm computes it in
 *   float64 ({@link sgmTrainSchedule}); diffusers in float32 ({@link diffusersTrainSchedule}).
 * - sgm `LegacyDDPMDiscretization` (what the reference code samples with, docs/method.md §3.3):
 *   t_i = int(linspace(999, 0, n, endpoint=False)) reversed, σ_i = σ_train[t_i], σ_n = 0 ({@link legacyDdpmSchedule}).
 * - sgm `EDMDiscretization` for SVD (σ_max 700, σ_min 0.002, ρ 7; UNet time input c_noise = ¼·ln σ)
 *   ({@link edmSchedule}).
 * - diffusers `EulerDiscreteScheduler` timestep spacings leading / linspace / trailing
 *   ({@link diffusersEulerSchedule}), for comparison with diffusers pipelines.
 *
 * Every sampling schedule is a {@link Schedule}: n+1 descending σ (last 0) and the n values the UNet receives as
 * its time input.
 * @module
 */

/** A sampling schedule: step i goes from `sigmas[i]` to `sigmas[i + 1]`. */
export interface Schedule {
  /** n + 1 noise levels, descending, `sigmas[n] = 0` (VE convention: x = x0 + σ·ε). */
  readonly sigmas: Float64Array;
  /** n UNet time inputs, one per step (DDPM timestep index for SD, c_noise = ¼·ln σ for EDM/SVD). */
  readonly timesteps: Float64Array;
  /** Factor a pure-noise start is multiplied by (sgm: √(1 + σ₀²); diffusers: its `init_noise_sigma`). */
  readonly initNoiseScale: number;
}

/** Parameters of a DDPM training schedule with scaled-linear betas (SD 1.x/2.x defaults). */
export interface TrainScheduleParams {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
}

/** SD 1.x / 2.x training schedule: 1000 steps, β from 0.00085 to 0.012 (scaled linear). */
export const SD_TRAIN: TrainScheduleParams = { numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012 };

/** The per-training-timestep tables (index t = 0..numTrainTimesteps−1). */
export interface TrainSchedule {
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** σ_t = √((1 − ᾱ_t)/ᾱ_t), ascending in t. */
  readonly sigmas: Float64Array;
}

const f = Math.fround;

/**
 * sgm's training tables: betas = linspace(√β₀, √β₁, N, float64)², ᾱ = cumprod(1 − β) in float64, and
 * σ = float32(√float32((1 − ᾱ)/ᾱ)) as `LegacyDDPMDiscretization` / `DiscreteDenoiser` compute them (the ratio in
 * float64, cast to float32, square root in float32).
 */
export function sgmTrainSchedule(p: TrainScheduleParams = SD_TRAIN): TrainSchedule {
  const n = p.numTrainTimesteps;
  const betas = new Float64Array(n);
  const a = Math.sqrt(p.betaStart), b = Math.sqrt(p.betaEnd);
  // torch.linspace(float64): start + i·step for the first half, end − (n−1−i)·step for the second.
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) {
    const v = i < n / 2 ? a + step * i : b - step * (n - 1 - i);
    betas[i] = v * v;
  }
  const alphasCumprod = new Float64Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) alphasCumprod[i] = acc *= 1 - betas[i];
  const sigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) sigmas[i] = f(Math.sqrt(f((1 - alphasCumprod[i]) / alphasCumprod[i])));
  return { betas, alphasCumprod, sigmas };
}

/**
 * diffusers' float32 training tables (`scaled_linear`): betas = linspace(√β₀, √β₁, N, float32)², ᾱ = cumprod
 * (torch accumulates a float32 cumprod in double on the CPU), σ = ((1 − ᾱ)/ᾱ)^0.5 in float32. Bit-identical to
 * the diffusers 0.30 / torch 1.13 CPU tables of the conformance set.
 */
export function diffusersTrainSchedule(p: TrainScheduleParams = SD_TRAIN): TrainSchedule {
  const n = p.numTrainTimesteps;
  const betas = new Float64Array(n);
  const a = f(Math.sqrt(p.betaStart)), b = f(Math.sqrt(p.betaEnd));
  const step = f((b - a) / (n - 1));
  // torch's CPU float32 linspace as diffusers gets it (reproduced bit for bit): 8-lane chunks, each lane
  // base + k·step, the chunk base fused start + step·i (or end − step·(n−1−i) past the halfway point).
  for (let c = 0; c < n; c += 8) {
    const base = c < Math.floor(n / 2) ? f(a + step * c) : f(b - step * (n - 1 - c));
    for (let k = 0; k < 8 && c + k < n; k++) {
      const v = f(base + f(k * step));
      betas[c + k] = f(v * v);
    }
  }
  const alphasCumprod = new Float64Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    acc *= f(1 - betas[i]);
    alphasCumprod[i] = f(acc);
  }
  const sigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ac = alphasCumprod[i];
    sigmas[i] = f(Math.sqrt(f(f(1 - ac) / ac)));
  }
  return { betas, alphasCumprod, sigmas };
}

/** numpy `linspace(start, stop, num, endpoint)` element i (float64: i·step + start). */
function linspaceAt(start: number, stop: number, num: number, endpoint: boolean, i: number): number {
  const div = endpoint ? num - 1 : num;
  return i * ((stop - start) / div) + start;
}

/**
 * sgm `generate_roughly_equally_spaced_steps(n, N)` reversed to sampling order:
 * int(linspace(N−1, 0, n, endpoint=False)), descending (25 of 1000 → 999, 959, …, 39).
 */
export function legacyDdpmTimesteps(numSteps: number, numTrainTimesteps = 1000): Int32Array {
  if (!(Number.isInteger(numSteps) && numSteps >= 1 && numSteps <= numTrainTimesteps)) {
    throw new RangeError(
      `legacyDdpmTimesteps: steps must be an integer in 1..${numTrainTimesteps}, got ${numSteps}`,
    );
  }
  const t = new Int32Array(numSteps);
  for (let i = 0; i < numSteps; i++) {
    t[i] = Math.trunc(linspaceAt(numTrainTimesteps - 1, 0, numSteps, false, i));
  }
  return t;
}

/**
 * sgm `LegacyDDPMDiscretization()(n)` + `DiscreteDenoiser` (the reference sampler, docs/method.md §3.3):
 * σ_i = σ_train[t_i] for the timesteps of {@link legacyDdpmTimesteps}, σ_n = 0; the UNet gets t_i;
 * a pure-noise start is scaled by √(1 + σ₀²).
 */
export function legacyDdpmSchedule(numSteps: number, train: TrainSchedule = sgmTrainSchedule()): Schedule {
  const ts = legacyDdpmTimesteps(numSteps, train.sigmas.length);
  const sigmas = new Float64Array(numSteps + 1);
  const timesteps = new Float64Array(numSteps);
  for (let i = 0; i < numSteps; i++) {
    sigmas[i] = train.sigmas[ts[i]];
    timesteps[i] = ts[i];
  }
  return { sigmas, timesteps, initNoiseScale: f(Math.sqrt(1 + sigmas[0] * sigmas[0])) };
}

/**
 * `DiscreteDenoiser.sigma_to_idx`: index of the training σ nearest to `sigma` (first one on ties), i.e. the
 * integer DDPM timestep the UNet receives for that noise level.
 */
export function sigmaToTimestep(sigma: number, trainSigmas: ArrayLike<number>): number {
  let best = 0, bestD = Infinity;
  for (let i = 0; i < trainSigmas.length; i++) {
    const d = Math.abs(sigma - trainSigmas[i]);
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** Parameters of the EDM (Karras) discretization. */
export interface EdmParams {
  sigmaMin: number;
  sigmaMax: number;
  rho: number;
}

/** SVD's `EDMDiscretization` defaults. */
export const SVD_EDM: EdmParams = { sigmaMin: 0.002, sigmaMax: 700, rho: 7 };

/**
 * sgm `EDMDiscretization` (SVD): σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, σ_n = 0; the UNet
 * time input is `VScalingWithEDMcNoise`'s c_noise = ¼·ln σ_i.
 */
export function edmSchedule(numSteps: number, p: EdmParams = SVD_EDM): Schedule {
  if (!(Number.isInteger(numSteps) && numSteps >= 2)) {
    throw new RangeError(`edmSchedule: steps must be ≥ 2, got ${numSteps}`);
  }
  const maxInv = p.sigmaMax ** (1 / p.rho), minInv = p.sigmaMin ** (1 / p.rho);
  const sigmas = new Float64Array(numSteps + 1);
  const timesteps = new Float64Array(numSteps);
  for (let i = 0; i < numSteps; i++) {
    sigmas[i] = (maxInv + (i / (numSteps - 1)) * (minInv - maxInv)) ** p.rho;
    timesteps[i] = 0.25 * Math.log(sigmas[i]);
  }
  return { sigmas, timesteps, initNoiseScale: Math.sqrt(1 + sigmas[0] * sigmas[0]) };
}

/** diffusers `timestep_spacing`. */
export type TimestepSpacing = "leading" | "linspace" | "trailing";

/** numpy `round` (half to even). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * diffusers `EulerDiscreteScheduler.set_timesteps(n)` (interpolation linear, no Karras σ): the timesteps of the
 * chosen spacing, σ interpolated linearly in t over the float32 training σ table, final 0, all rounded to
 * float32; `init_noise_sigma` = √(σ_max² + 1) for leading, σ_max otherwise.
 */
export function diffusersEulerSchedule(
  numSteps: number,
  spacing: TimestepSpacing,
  stepsOffset = 0,
  train: TrainSchedule = diffusersTrainSchedule(),
): Schedule {
  const N = train.sigmas.length;
  const ts = new Float64Array(numSteps);
  for (let i = 0; i < numSteps; i++) {
    const j = numSteps - 1 - i; // diffusers builds ascending, then reverses
    if (spacing === "linspace") ts[i] = f(linspaceAt(0, N - 1, numSteps, true, j));
    else if (spacing === "leading") ts[i] = f(roundHalfEven(j * Math.floor(N / numSteps))) + stepsOffset;
    else ts[i] = f(roundHalfEven(N - i * (N / numSteps))) - 1;
  }
  const sigmas = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) {
    const t = ts[i], lo = Math.min(Math.floor(t), N - 1), hi = Math.min(lo + 1, N - 1);
    // np.interp: fp[lo] + slope·(t − lo)
    sigmas[i] = f(
      hi === lo ? train.sigmas[lo] : train.sigmas[lo] + (train.sigmas[hi] - train.sigmas[lo]) * (t - lo),
    );
  }
  let max = 0;
  for (const s of sigmas) max = Math.max(max, s);
  const initNoiseScale = spacing === "leading" ? f(Math.sqrt(max * max + 1)) : max;
  return { sigmas, timesteps: ts, initNoiseScale };
}
