/**
 * The SD denoising passes of the method (docs/method.md §3, §4, §8.1–8.4), run by `sampleEuler` over an abstract
 * UNet, so this module knows nothing about ONNX, and nothing about labels either: it works on *samples*, each of which is one frame of the
 * current batch, optionally with a modulation mask. The caller decides which samples exist (the reference
 * schedule: every frame × label × sign; the optimized one: only frames where the label is present).
 *
 * UNet batches use the reference layout [uncond half (B) ; cond half (B)] with uncond context = zeros and cond
 * context = the empty-prompt embedding, guided with ε̂ = ε_u + s(ε_c − ε_u) (`sampler/cfg.ts`). Injection, prefix
 * reuse and modulation are per-step inputs of the denoiser; latent blending is the sampler's step callback.
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { type EpsModel, sampleEuler, scaleModelInput, type StepInfo, vToEps } from "../sampler/euler.ts";
import { combineCfg, doubleBatch } from "../sampler/cfg.ts";
import { blendLatents } from "../sampler/blend.ts";
import type { Schedule } from "../sampler/schedule.ts";

/** One UNet evaluation request over a doubled batch of 2B samples. */
export interface UNetRequest {
  /** Scaled model input x/√(σ²+1), [2B, 4, h, w] (absent when resuming from `prefix`). */
  sample?: Tensor<"F32">;
  timestep: number;
  /** [2B, 77, D]. */
  context: Tensor<"F32">;
  /** Additive modulation [2B, tokens, 1] on the modulated block's attention output. */
  modulation?: Tensor<"F32">;
  /** Stored attention tensors that replace the recomputed ones, by tap name, each [2B, tokens, C]. */
  injected?: Record<string, Tensor<"F32">>;
  /** Tap names wanted as outputs. */
  taps?: readonly string[];
  /** Whether ε is needed (false allows a truncated graph). */
  needEps?: boolean;
  /** Also return the prefix tensors (the UNet's state entering the runner's split position). */
  exposePrefix?: boolean;
  /** Resume from these prefix tensors (each [2B, …]) instead of running the UNet from `sample`. */
  prefix?: Record<string, Tensor<"F32">>;
  /** Largest number of samples per backend run (memory bound); default: the runner's. */
  microBatch?: number;
}

/** What a UNet evaluation returns. */
export interface UNetResult {
  eps?: Tensor<"F32">;
  taps: Record<string, Tensor<"F32">>;
  /** Prefix tensors, when `exposePrefix` was requested. */
  prefix?: Record<string, Tensor<"F32">>;
  /** What `eps` holds: "epsilon" (default) or "v_prediction" (the model's scheduler config). */
  prediction?: string;
}

/** The UNet as this module sees it. */
export interface UNetRunner {
  run(req: UNetRequest): Promise<UNetResult>;
}

/** Shared settings of every pass of one batch. */
export interface PassSettings {
  schedule: Schedule;
  /** First step (t_m). */
  start: number;
  /** One past the last step (normally the schedule length). */
  end: number;
  guidance: number;
  /** Conditional context [1, 77, D] (CLIP("") or the embedded model's learned embedding). */
  cond: Tensor<"F32">;
}

/** The doubled-batch context [zeros (B); cond (B)]. */
export function cfgContext(cond: Tensor<"F32">, B: number): Tensor<"F32"> {
  const per = cond.data.length;
  const out = new Float32Array(2 * B * per);
  for (let b = 0; b < B; b++) out.set(cond.data, (B + b) * per);
  return f32([2 * B, ...cond.shape.slice(1)], out);
}

/** Record of the unmodulated pass of a batch of F frames. */
export interface UnmodulatedRecord {
  /** Latent after each step i (index i − start), [F, 4, h, w]. */
  xAfter: Tensor<"F32">[];
  /** Taps per step (index i − start), each [2F, tokens, C] in [uncond; cond] order. */
  taps: Record<string, Tensor<"F32">>[];
  /**
   * With `recordPrefix`: the UNet's state entering the split position at the first step, [2F, …] each. It does
   * not depend on a modulation added at or after that position, so modulated passes resume from it.
   */
  prefix?: Record<string, Tensor<"F32">>;
}

/**
 * The SD denoiser as the sampler sees it: the UNet over the doubled batch [uncond (B); cond (B)] with the
 * contexts [zeros; cond], guided by {@link combineCfg}; a v-prediction model's output is turned into ε
 * (`prediction_type: v_prediction`, k-diffusion's v-denoiser). `request` adds per-step inputs (taps,
 * modulation, injection, prefix); `seen` observes each raw result.
 */
export function sdDenoiser(
  unet: UNetRunner,
  s: PassSettings,
  B: number,
  request: (info: StepInfo) => Partial<UNetRequest>,
  seen?: (r: UNetResult, info: StepInfo) => void,
): EpsModel {
  const context = cfgContext(s.cond, B);
  return async (modelInput, info) => {
    const extra = request(info);
    const r = await unet.run({
      sample: extra.prefix ? undefined : doubleBatch(modelInput),
      timestep: info.timestep,
      context,
      ...extra,
    });
    seen?.(r, info);
    const guidedPrediction = combineCfg(r.eps!, s.guidance);
    return r.prediction === "v_prediction" ? vToEps(modelInput, guidedPrediction, info.sigma) : guidedPrediction;
  };
}

/**
 * The unmodulated pass from x_{t_m} over steps start..end−1 with CFG, recording the latent after every step and
 * the requested taps at every step. With `tapsOnlyAtLast`, taps are requested only at the last step (the feature
 * pass); with `lastStepTruncated` the last evaluation skips ε (truncated graph) and the final latent is not
 * produced. With `recordPrefix` the first step's prefix tensors are recorded too (for prefix reuse).
 */
export async function unmodulatedPass(
  unet: UNetRunner,
  xStart: Tensor<"F32">,
  s: PassSettings,
  opts: { taps: readonly string[]; tapsOnlyAtLast?: boolean; lastStepTruncated?: boolean; recordPrefix?: boolean },
): Promise<UnmodulatedRecord> {
  const F = xStart.shape[0];
  const rec: UnmodulatedRecord = { xAfter: [], taps: [] };
  const last = s.end - 1;
  const wantTaps = (i: number) => !opts.tapsOnlyAtLast || i === last;
  const model = sdDenoiser(unet, s, F, (info) => ({
    taps: wantTaps(info.step) ? opts.taps : [],
    needEps: true,
    exposePrefix: info.step === s.start && !!opts.recordPrefix,
  }), (r, info) => {
    rec.taps.push(wantTaps(info.step) ? r.taps : {});
    if (info.step === s.start && opts.recordPrefix) {
      if (!r.prefix) throw new Error("unmodulatedPass: the UNet runner returned no prefix tensors");
      rec.prefix = r.prefix;
    }
  });
  const truncated = !!opts.lastStepTruncated && last >= s.start;
  const x = await sampleEuler(model, xStart, s.schedule, {
    startIndex: s.start,
    endIndex: truncated ? last : s.end,
    callback: (_, x) => void rec.xAfter.push(x),
  });
  if (truncated) {
    // The tapped last step needs no ε: its graph stops after the deepest tap.
    const r = await unet.run({
      sample: doubleBatch(scaleModelInput(x, s.schedule.sigmas[last])),
      timestep: s.schedule.timesteps[last],
      context: cfgContext(s.cond, F),
      taps: opts.taps,
      needEps: false,
      exposePrefix: last === s.start && !!opts.recordPrefix,
    });
    rec.taps.push(r.taps);
    if (last === s.start && opts.recordPrefix) rec.prefix = r.prefix;
  }
  return rec;
}

/** One modulated sample: frame index in the batch and its binary mask on the feature grid (or null = zeros). */
export interface ModSample {
  frame: number;
  /** Mask at H/16 × W/16, row-major, 0/1. */
  mask: Uint8Array | null;
  /** +1 or −1. */
  sign: number;
}

/** Settings of the modulated passes (docs/method.md §8.2–8.4). */
export interface ModulationSettings {
  lambda: number;
  /** Tokens of the modulated block (= grid h·w). */
  tokens: number;
  /** Inject the unmodulated pass's attention at every step ≥ t_m. */
  injection: boolean;
  /** Tap names that are injected (must be recorded by the unmodulated pass). */
  injectNames: readonly string[];
  /** Latent blending on steps [start, blendEnd] inclusive; blendEnd < start disables it. */
  blendEnd: number;
  /** Grid size for the blending mask. */
  grid: [number, number];
  /**
   * Prefix reuse: at the first step, resume from the unmodulated pass's recorded prefix (which must exist)
   * instead of recomputing everything before the split; `prefixInjectNames` = the injected names at or after
   * the split (the only ones the resumed UNet reads).
   */
  reusePrefix?: boolean;
  prefixInjectNames?: readonly string[];
  /** Largest number of samples per backend run (memory bound); default: the runner's. */
  microBatch?: number;
}

/** Gather rows of a [2F, …] tensor for samples with frame indices `frames` → [2B, …] ([uncond; cond]). */
export function gatherDoubled(t: Tensor<"F32">, frames: readonly number[], F: number): Tensor<"F32"> {
  const inner = t.data.length / t.shape[0];
  const B = frames.length;
  const out = new Float32Array(2 * B * inner);
  frames.forEach((f, b) => {
    out.set(t.data.subarray(f * inner, (f + 1) * inner), b * inner);
    out.set(t.data.subarray((F + f) * inner, (F + f + 1) * inner), (B + b) * inner);
  });
  return f32([2 * B, ...t.shape.slice(1)], out);
}

/** Gather rows of a [F, …] tensor for frame indices → [B, …]. */
export function gatherRows(t: Tensor<"F32">, frames: readonly number[]): Tensor<"F32"> {
  const inner = t.data.length / t.shape[0];
  const out = new Float32Array(frames.length * inner);
  frames.forEach((f, b) => out.set(t.data.subarray(f * inner, (f + 1) * inner), b * inner));
  return f32([frames.length, ...t.shape.slice(1)], out);
}

/**
 * Re-denoise a set of modulated samples from the same start latents x_{t_m} (one per frame of the batch):
 * at step start, sign·λ·mask is added to the modulated block's attention output of both CFG halves; stored
 * attention is injected at every step; the latent is blended with the unmodulated one on steps
 * start..blendEnd. Returns the final latents [B, 4, h, w].
 */
export async function modulatedPass(
  unet: UNetRunner,
  xStart: Tensor<"F32">,
  record: UnmodulatedRecord,
  samples: readonly ModSample[],
  s: PassSettings,
  m: ModulationSettings,
): Promise<Tensor<"F32">> {
  const F = xStart.shape[0], B = samples.length;
  const frames = samples.map((q) => q.frame);
  // Modulation input [2B, tokens, 1]: the same sign·λ·mask on the uncond and cond halves (modulate_uc).
  const mod = new Float32Array(2 * B * m.tokens);
  samples.forEach((q, b) => {
    if (!q.mask) return;
    for (let n = 0; n < m.tokens; n++) {
      const v = q.sign * m.lambda * q.mask[n];
      mod[b * m.tokens + n] = v;
      mod[(B + b) * m.tokens + n] = v;
    }
  });
  const modulation = f32([2 * B, m.tokens, 1], mod);
  const zeroMod = f32([2 * B, m.tokens, 1]);
  const masks = m.blendEnd >= s.start ? blendMasks(samples, m.grid) : null;
  const model = sdDenoiser(unet, s, B, ({ step: i }) => {
    const k = i - s.start;
    // The first step's input is x_{t_m} itself, so everything before the split equals the recorded prefix.
    const resume = i === s.start && !!m.reusePrefix;
    if (resume && !record.prefix) throw new Error("modulatedPass: prefix reuse needs a recorded prefix");
    let injected: Record<string, Tensor<"F32">> | undefined;
    if (m.injection) {
      injected = {};
      for (const name of resume ? m.prefixInjectNames ?? m.injectNames : m.injectNames) {
        injected[name] = gatherDoubled(record.taps[k][name], frames, F);
      }
    }
    let prefix: Record<string, Tensor<"F32">> | undefined;
    if (resume) {
      prefix = {};
      for (const [name, t] of Object.entries(record.prefix!)) prefix[name] = gatherDoubled(t, frames, F);
    }
    return {
      prefix,
      modulation: i === s.start ? modulation : zeroMod,
      injected,
      taps: [],
      needEps: true,
      microBatch: m.microBatch,
    };
  });
  // Latent blending with the unmodulated latents on steps start..blendEnd (docs/method.md §8.4).
  return sampleEuler(model, gatherRows(xStart, frames), s.schedule, {
    startIndex: s.start,
    endIndex: s.end,
    callback: (i, x) =>
      masks && i <= m.blendEnd ? blendLatents(x, gatherRows(record.xAfter[i - s.start], frames), masks) : undefined,
  });
}

function blendMasks(samples: readonly ModSample[], grid: [number, number]): Tensor<"F32"> {
  const [gh, gw] = grid;
  const out = new Float32Array(samples.length * gh * gw);
  samples.forEach((q, b) => {
    if (q.mask) for (let n = 0; n < gh * gw; n++) out[b * gh * gw + n] = q.mask[n];
  });
  return f32([samples.length, gh, gw], out);
}
