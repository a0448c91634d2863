/**
 * The denoising passes of the method on the SVD backbone (docs/method.md §1.2, §3, §4, §8.1–8.4). Unlike SD, the
 * frames of a batch are ONE video (temporal attention couples them), so a pass always re-denoises every frame:
 * a modulated *sample* is the whole batch with one mask per frame (the reference's pass for one (label, sign)).
 *
 * Each UNet evaluation runs 2B videos [uncond (B); cond (B)]: uncond = zero image embedding and zero conditioning
 * latent, cond = the batch's image conditioning, same added time ids; v-prediction with
 * `VScalingWithEDMcNoise` (timestep c_noise = ¼·ln σ), guided per frame with linear scales (1.0 → 2.5) on ε
 * (guidance is linear, so this equals sgm's guidance of the denoised output), Euler steps on the EDM schedule.
 * Modulation: +sign·λ·mask on the spatial AND temporal self-attention outputs of the modulated position (8) at
 * step t_m; injection: the unmodulated pass's TEMPORAL self-attention q/k of positions 3..11 at every step;
 * latent blending with the unmodulated latents on steps start..blendEnd.
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { type EpsModel, sampleEuler, scaleModelInput, type StepInfo, vToEps } from "../sampler/euler.ts";
import { combineCfg } from "../sampler/cfg.ts";
import { blendLatents } from "../sampler/blend.ts";
import { svdAddedTimeIds, type SvdConditioning, svdUNetSample } from "../sampler/svd.ts";
import type { Schedule } from "../sampler/schedule.ts";
import type { SvdUNetLoadOptions } from "./unet.ts";
import type { BackboneParams } from "../types.ts";
import { svdUNetOf } from "./models.ts";

/** One SVD UNet evaluation over 2B videos of F frames. */
export interface SvdRunRequest {
  /** [2B, F, 4 + L, h, w]. */
  sample: Tensor<"F32">;
  /** c_noise. */
  timestep: number;
  /** [2B, 1, D]. */
  context: Tensor<"F32">;
  addedTimeIds: Float32Array;
  /** [2B·F, tokens, 1] added to the modulated position's spatial and temporal attn1 outputs. */
  modulation?: Tensor<"F32">;
  /** Temporal attn1 q/k by tap name (`up.posII.temporal.attn1_q`), each [2B·tokens_i, F, C]. */
  injected?: Record<string, Tensor<"F32">>;
  taps?: readonly string[];
  /** Whether v is needed (false allows a truncated graph). */
  needV?: boolean;
}

/** The SVD UNet as the passes see it. */
export interface SvdRunner {
  run(req: SvdRunRequest): Promise<{ v?: Tensor<"F32">; taps: Record<string, Tensor<"F32">> }>;
}

/**
 * A {@link SvdRunner} over the graph variants the stages need: modulation/injection inputs → the modulated
 * variant; taps without v → the truncated tap variant; otherwise the plain (optionally tapped) one.
 */
export class SvdVariantRunner implements SvdRunner {
  constructor(
    private readonly b: BackboneParams,
    private readonly frames: number,
    private readonly modulationPosition: number,
    private readonly injectPositions: readonly number[],
  ) {}

  async run(req: SvdRunRequest) {
    const taps = [...(req.taps ?? [])].sort();
    let opts: SvdUNetLoadOptions;
    if (req.modulation || req.injected) {
      opts = {
        modulationPosition: req.modulation ? this.modulationPosition : null,
        modulationTargets: ["spatial", "temporal"],
        injectPositions: req.injected ? [...this.injectPositions] : [],
        taps,
      };
    } else if (taps.length && req.needV === false) {
      opts = { taps, truncate: true };
    } else {
      opts = { taps };
    }
    const unet = await svdUNetOf(this.b, opts, this.frames);
    const out = await unet.run({
      sample: req.sample,
      timestep: req.timestep,
      context: req.context,
      addedTimeIds: req.addedTimeIds,
      modulation: req.modulation,
      injected: req.injected,
    });
    return { v: out.v, taps: out.taps };
  }
}

/** Shared settings of every pass of one batch. */
export interface SvdPassSettings {
  schedule: Schedule;
  /** First step (t_m). */
  start: number;
  /** One past the last step. */
  end: number;
  /** Guidance scale of each frame (sgm LinearPredictionGuider: linspace(1, max, F)). */
  frameScales: ArrayLike<number>;
  cond: SvdConditioning;
}

/** Record of the unmodulated pass of one batch. */
export interface SvdRecord {
  /** Latent after each step i (index i − start), [F, 4, h, w]. */
  xAfter: Tensor<"F32">[];
  /** Taps per step (index i − start), each [2·…] in [uncond; cond] video order. */
  taps: Record<string, Tensor<"F32">>[];
}

/** Videos of B samples: [B uncond; B cond] UNet inputs for scaled latents x_in [B·F, 4, h, w] (sample-major). */
function videoBatch(xin: Tensor<"F32">, B: number, s: SvdPassSettings) {
  const [BF, C, h, w] = xin.shape, F = BF / B;
  const parts = Array.from(
    { length: B },
    (_, b) =>
      svdUNetSample(
        f32([F, C, h, w], xin.data.subarray(b * F * C * h * w, (b + 1) * F * C * h * w)),
        s.cond.latent,
        true,
      ),
  );
  // Each part is [2, F, 4 + L, h, w] = [uncond; cond]; regroup to [uncond × B; cond × B].
  const video = parts[0].data.length / 2;
  const sample = new Float32Array(2 * B * video);
  parts.forEach((p, b) => {
    sample.set(p.data.subarray(0, video), b * video);
    sample.set(p.data.subarray(video), (B + b) * video);
  });
  const e = s.cond.embedding, D = e.data.length;
  const context = new Float32Array(2 * B * D);
  for (let b = 0; b < B; b++) context.set(e.data, (B + b) * D);
  return { sample: f32([2 * B, ...parts[0].shape.slice(1)], sample), context: f32([2 * B, 1, D], context) };
}

/**
 * The SVD denoiser as the sampler sees it: 2B videos [uncond; cond] through the UNet, v guided per frame with
 * {@link combineCfg} (linear scales 1.0 → max), then ε = (σ·x_in + v)/√(σ²+1) (`VScalingWithEDMcNoise`).
 * `request` adds per-step inputs (taps, modulation, injection); `seen` observes each raw result.
 */
function svdDenoiser(
  unet: SvdRunner,
  s: SvdPassSettings,
  B: number,
  request: (info: StepInfo) => Partial<SvdRunRequest>,
  seen?: (r: { taps: Record<string, Tensor<"F32">> }, info: StepInfo) => void,
): EpsModel {
  const ids = svdAddedTimeIds(s.cond.micro);
  const F = s.frameScales.length;
  const scales = new Float64Array(B * F);
  for (let r = 0; r < B * F; r++) scales[r] = s.frameScales[r % F];
  return async (xin, info) => {
    const { sample, context } = videoBatch(xin, B, s);
    const r = await unet.run({ sample, timestep: info.timestep, context, addedTimeIds: ids, ...request(info) });
    seen?.(r, info);
    const v = r.v!; // [2B, F, 4, h, w] read as rows of frames [2B·F, 4, h, w]
    const guidedV = combineCfg(f32([2 * B * F, ...xin.shape.slice(1)], v.data), scales);
    return vToEps(xin, guidedV, info.sigma);
  };
}

/**
 * The unmodulated pass of one batch (one video) from x_{t_m} [F, 4, h, w] over steps start..end−1, recording the
 * latent after every step and the requested taps ([2·…]: uncond video, cond video). `tapsOnlyAtLast`: taps only
 * at the last step (the feature pass); `lastStepTruncated`: the last evaluation skips v (no final latent).
 */
export async function svdUnmodulatedPass(
  unet: SvdRunner,
  xStart: Tensor<"F32">,
  s: SvdPassSettings,
  opts: { taps: readonly string[]; tapsOnlyAtLast?: boolean; lastStepTruncated?: boolean },
): Promise<SvdRecord> {
  const rec: SvdRecord = { xAfter: [], taps: [] };
  const last = s.end - 1;
  const wantTaps = (i: number) => !opts.tapsOnlyAtLast || i === last;
  const model = svdDenoiser(
    unet,
    s,
    1,
    (info) => ({ taps: wantTaps(info.step) ? opts.taps : [], needV: true }),
    (r, info) => void rec.taps.push(wantTaps(info.step) ? r.taps : {}),
  );
  const truncated = !!opts.lastStepTruncated && last >= s.start;
  const x = await sampleEuler(model, xStart, s.schedule, {
    startIndex: s.start,
    endIndex: truncated ? last : s.end,
    callback: (_, x) => void rec.xAfter.push(x),
  });
  if (truncated) {
    // The tapped last step needs no v: its graph stops after the deepest tap.
    const { sample, context } = videoBatch(scaleModelInput(x, s.schedule.sigmas[last]), 1, s);
    const r = await unet.run({
      sample,
      timestep: s.schedule.timesteps[last],
      context,
      addedTimeIds: svdAddedTimeIds(s.cond.micro),
      taps: opts.taps,
      needV: false,
    });
    rec.taps.push(r.taps);
  }
  return rec;
}

/** One modulated sample: the whole batch with one mask per frame (null = zeros) and a sign. */
export interface SvdModSample {
  /** Per frame, the 0/1 mask on the feature grid (row-major h·w), or null. */
  masks: readonly (Uint8Array | null)[];
  sign: number;
}

/** Settings of the modulated passes. */
export interface SvdModulationSettings {
  lambda: number;
  /** Tokens of the modulated position (= grid h·w). */
  tokens: number;
  /** Temporal q/k tap names injected at every step (recorded by the unmodulated pass); empty = no injection. */
  injectNames: readonly string[];
  /** Latent blending on steps [start, blendEnd]; blendEnd < start disables it. */
  blendEnd: number;
  grid: [number, number];
}

/** A [2·R, …] tensor ([uncond; cond], R rows each) repeated for B samples: [uncond × B; cond × B]. */
function repeatHalves(t: Tensor<"F32">, B: number): Tensor<"F32"> {
  const half = t.data.length / 2;
  const out = new Float32Array(2 * B * half);
  for (let b = 0; b < B; b++) {
    out.set(t.data.subarray(0, half), b * half);
    out.set(t.data.subarray(half), (B + b) * half);
  }
  return f32([t.shape[0] * B, ...t.shape.slice(1)], out);
}

/**
 * Re-denoise B modulated samples of one batch from the same x_{t_m} [F, 4, h, w]: at step start, sign·λ·mask_f
 * is added to both CFG halves (modulate_uc) of every frame f; stored temporal q/k are injected at every step;
 * the latents are blended with the unmodulated ones on steps start..blendEnd. Returns [B·F, 4, h, w].
 */
export async function svdModulatedPasses(
  unet: SvdRunner,
  xStart: Tensor<"F32">,
  record: SvdRecord,
  samples: readonly SvdModSample[],
  s: SvdPassSettings,
  m: SvdModulationSettings,
): Promise<Tensor<"F32">> {
  const F = xStart.shape[0], B = samples.length, T = m.tokens;
  const mod = new Float32Array(2 * B * F * T);
  const blend = new Float32Array(B * F * T);
  samples.forEach((q, b) => {
    q.masks.forEach((mask, f) => {
      if (!mask) return;
      for (let n = 0; n < T; n++) {
        const v = q.sign * m.lambda * mask[n];
        mod[(b * F + f) * T + n] = v;
        mod[((B + b) * F + f) * T + n] = v;
        blend[(b * F + f) * T + n] = mask[n];
      }
    });
  });
  const modulation = f32([2 * B * F, T, 1], mod), zeroMod = f32([2 * B * F, T, 1]);
  const masks = f32([B * F, m.grid[0], m.grid[1]], blend);
  const repeat = (t: Tensor<"F32">) => {
    const out = new Float32Array(B * t.data.length);
    for (let b = 0; b < B; b++) out.set(t.data, b * t.data.length);
    return f32([B * t.shape[0], ...t.shape.slice(1)], out);
  };
  const model = svdDenoiser(unet, s, B, ({ step: i }) => {
    let injected: Record<string, Tensor<"F32">> | undefined;
    if (m.injectNames.length) {
      injected = {};
      for (const name of m.injectNames) injected[name] = repeatHalves(record.taps[i - s.start][name], B);
    }
    return { modulation: i === s.start ? modulation : zeroMod, injected, needV: true };
  });
  // Latent blending with the unmodulated latents on steps start..blendEnd (docs/method.md §8.4).
  return sampleEuler(model, repeat(xStart), s.schedule, {
    startIndex: s.start,
    endIndex: s.end,
    callback: (i, x) => (i <= m.blendEnd ? blendLatents(x, repeat(record.xAfter[i - s.start]), masks) : undefined),
  });
}
