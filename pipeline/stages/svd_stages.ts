/**
 * The SVD backbone's part of the stages `features` and `modulate` (docs/method.md §1.2, §4, §8; SVD settings:
 * t_m 17, spatial self-attention queries of blocks 6–8 as features, modulation of the spatial and temporal
 * self-attention outputs of block 8, temporal q/k injection at blocks 3..11, blending t_m..end, frame-by-frame
 * decode). The stage files dispatch here when `backbone.kind` is svd; the functions work on one batch's tensors
 * (plus {@link svdModulateClip}, the whole modulate stage over a clip).
 *
 * Conditioning of each batch (CLIP embedding and VAE latent of its first frame) is recomputed where needed; its
 * only randomness, the cond_aug noise, is drawn by the `invert` stage (tensor `cond_noise` [1, 3, H, W]).
 * @module
 */
import { type Artifacts, rowsOf, type StageContext, tensorOutput } from "../dag/stage.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";
import { edmSchedule } from "../backbone/sampler/schedule.ts";
import { addNoise } from "../backbone/sampler/noise.ts";
import { linearFrameScales } from "../backbone/sampler/cfg.ts";
import { posLabel } from "../backbone/models/unet_graph.ts";
import { tapName } from "../backbone/models/unet.ts";
import { resizeBilinearCv } from "../tensor/ops.ts";
import { differenceMap } from "../seg/labels.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import { type BackboneParams, vaeOf } from "./backbone.ts";
import { images01ToFrames } from "./frames_util.ts";
import { finalRows, type ModulationParams } from "./modulate.ts";
import { svdConditioning } from "./svd_backbone.ts";
import {
  type SvdModSample,
  svdModulatedPasses,
  type SvdPassSettings,
  svdUnmodulatedPass,
  SvdVariantRunner,
} from "./svd_passes.ts";

type P = Record<string, unknown>;

/** Sampler params (config group `sampler`); for SVD `guidance` is the last frame's scale of the 1 → max ramp. */
export interface SamplerParams {
  steps: number;
  t_m: number;
  t_f: number;
  guidance: number;
}

/** Up-path positions whose temporal self-attention q/k are injected (docs/method.md §8.3, SVD). */
export const SVD_INJECT_POSITIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Default memory budget of one group of modulated samples (bytes), as the SD schedule's. */
const DEFAULT_GROUP_BYTES = 2 ** 31;

/** SVD tap name of a transformer tensor at up-path position i, e.g. `up.pos07.spatial.attn1_q`. */
export function svdTap(i: number, kind: "spatial.attn1_q" | "temporal.attn1_q" | "temporal.attn1_k"): string {
  return `${posLabel(i)}.${kind}`;
}

/** Pass settings of one batch of F frames. */
function passSettings(
  s: SamplerParams,
  F: number,
  cond: SvdPassSettings["cond"],
  end: number,
): SvdPassSettings {
  return {
    schedule: edmSchedule(s.steps),
    start: s.t_m,
    end,
    frameScales: linearFrameScales(F, 1.0, s.guidance),
    cond,
  };
}

/**
 * The feature pass of one batch: x_{t_m} = z0 + σ[t_m]·ε, steps t_m..t_f with the image conditioning of the
 * batch's first frame, tapped at step t_f. Returns, per block of `blocks`, the spatial self-attention query
 * [2F, h·w, C] ([uncond; cond]) under the SD tap name `up.posII.attn1_q`, so the stage treats both backbones alike.
 */
export async function svdFeatureTaps(
  b: BackboneParams,
  frames: Tensor<"U8">,
  condNoise: Tensor<"F32">,
  z0: Tensor<"F32">,
  eps: Tensor<"F32">,
  s: SamplerParams,
  blocks: readonly number[],
): Promise<Record<string, Tensor<"F32">>> {
  const F = z0.shape[0];
  const cond = await svdConditioning(b, frames, condNoise);
  const settings = passSettings(s, F, cond, s.t_f + 1);
  const x = addNoise(z0, settings.schedule.sigmas[s.t_m], eps);
  const names = blocks.map((i) => svdTap(i, "spatial.attn1_q"));
  const runner = new SvdVariantRunner(b, F, 8, []);
  const rec = await svdUnmodulatedPass(runner, x, settings, {
    taps: names,
    tapsOnlyAtLast: true,
    lastStepTruncated: true,
  });
  const last = rec.taps[rec.taps.length - 1];
  return Object.fromEntries(blocks.map((i, j) => [tapName(i, "attn1_q"), last[names[j]]]));
}

/** Inputs of {@link svdModulateBatch}: one batch of F frames. */
export interface SvdModulateBatch {
  backbone: BackboneParams;
  sampler: SamplerParams;
  modulation: ModulationParams;
  /** Frames U8 [F, H, W, 3] (the first one conditions the batch). */
  frames: Tensor<"U8">;
  condNoise: Tensor<"F32">;
  /** Latents [F, 4, h, w] and the batch noise ε of the same shape. */
  z0: Tensor<"F32">;
  eps: Tensor<"F32">;
  /** Coarse (CBR-refined) labels of the batch, [F·gh·gw] row-major, gh×gw = half the latent grid. */
  coarse: ArrayLike<number>;
  /** The label set (ascending). */
  labels: readonly number[];
  /** Original frame size [H0, W0] (difference maps are taken there). */
  size0: [number, number];
  /** Skip labels absent from every frame of the batch (their maps are exactly zero). */
  skipAbsent: boolean;
  onProgress?: (fraction: number) => void;
}

/**
 * Masked modulation of one batch (docs/method.md §8.1–8.5, SVD): the unmodulated pass recording latents and the
 * temporal q/k, then per label and sign the whole batch re-denoised with per-frame masks, decoded frame by
 * frame, resized to the original size; returns the blurred ± difference maps U8 [F, L, H0, W0].
 */
export async function svdModulateBatch(a: SvdModulateBatch): Promise<Tensor<"U8">> {
  const { backbone: b, sampler: s, modulation: m } = a;
  const [F, , lh, lw] = a.z0.shape;
  const gh = lh / 2, gw = lw / 2, tokens = gh * gw, L = a.labels.length;
  const [H0, W0] = a.size0;
  const out = u8([F, L, H0, W0]);
  const cond = await svdConditioning(b, a.frames, a.condNoise);
  const settings = passSettings(s, F, cond, s.steps);
  const injectNames = m.injection
    ? SVD_INJECT_POSITIONS.flatMap((i) => [svdTap(i, "temporal.attn1_q"), svdTap(i, "temporal.attn1_k")])
    : [];
  const runner = new SvdVariantRunner(b, F, m.block, m.injection ? SVD_INJECT_POSITIONS : []);
  const x0 = addNoise(a.z0, settings.schedule.sigmas[s.t_m], a.eps);
  const record = await svdUnmodulatedPass(runner, x0, settings, { taps: injectNames });
  // SD blends on t_m..t_m+1 only; SVD (blend_until_end) to the last step (docs/method.md §8.4).
  const blendEnd = !m.latent_blending ? -1 : m.blend_until_end ? s.steps - 1 : s.t_m + 1;
  const samples: (SvdModSample & { l: number })[] = [];
  for (const [l, label] of a.labels.entries()) {
    const masks = Array.from({ length: F }, (_, f) => {
      const mask = new Uint8Array(tokens);
      let any = false;
      for (let n = 0; n < tokens; n++) if (a.coarse[f * tokens + n] === label) (mask[n] = 1, any = true);
      return any ? mask : null;
    });
    if (a.skipAbsent && masks.every((x) => x === null)) continue;
    for (const sign of [1, -1]) samples.push({ masks, sign, l });
  }
  const vae = await vaeOf(b, m.decoder);
  const [H, W] = [a.frames.shape[1], a.frames.shape[2]];
  const perSample = 2 * Object.values(record.taps[0]).reduce((t, v) => t + v.data.length * 4, 0) +
    F * H * W * 3 * 5 + F * H0 * W0 * 3 * 2;
  const budget = m.batch_bytes ?? DEFAULT_GROUP_BYTES;
  // Even group sizes keep a label's ± pair together (its maps are taken as soon as both images exist).
  const group = Math.max(2, Math.floor(budget / 2 / perSample) & ~1);
  const modSettings = { lambda: m.lambda, tokens, injectNames, blendEnd, grid: [gh, gw] as [number, number] };
  const plus = new Map<string, Tensor<"U8">>();
  for (let g = 0; g < samples.length; g += group) {
    const part = samples.slice(g, g + group);
    const xT = await svdModulatedPasses(runner, x0, record, part, settings, modSettings);
    const imgs = images01ToFrames(await vae.decode(xT)); // [G·F, H, W, 3]
    const px = H * W * 3;
    for (const [j, q] of part.entries()) {
      for (let f = 0; f < F; f++) {
        const one = {
          dtype: "U8" as const,
          shape: [H, W, 3],
          data: imgs.data.subarray((j * F + f) * px, (j * F + f + 1) * px),
        };
        const full = resizeBilinearCv(one, H0, W0);
        const key = `${q.l}|${f}`;
        if (q.sign > 0) plus.set(key, full);
        else {
          const d = differenceMap(plus.get(key)!, full, m.difference_mode);
          out.data.set(d.data, (f * L + q.l) * H0 * W0);
          plus.delete(key);
        }
      }
    }
    a.onProgress?.(Math.min(1, (g + part.length) / samples.length));
  }
  return out;
}

/**
 * Stage `modulate` for `backbone.kind: svd` over one clip (the stage's artifacts: `diff` U8 [N, L, H0, W0], json
 * {labels}), streamed out batch by batch as the SD path does. Schedule `reference` runs every label of every batch of the plan (repeated last batch included);
 * `optimized` skips labels absent from a whole batch and runs a repeated batch once (same maps).
 */
export async function svdModulateClip(
  inputs: Record<string, Artifacts>,
  p: P,
  ctx: StageContext,
): Promise<Artifacts> {
  const coarse = inputs.knn.tensors.coarse_batches as Tensor<"I32">; // [B, F, h, w]
  const labels = inputs.knn.json.labels as number[];
  const size0 = inputs.frames.json.size0 as [number, number];
  const eps = inputs.invert.tensors.eps as Tensor<"F32">;
  const condNoise = inputs.invert.tensors.cond_noise as Tensor<"F32"> | undefined;
  if (!condNoise) throw new Error("modulate: the invert artifact has no cond_noise (not an SVD invert)");
  const N = (inputs.frames.json.frames as string[]).length, L = labels.length;
  const optimized = p.schedule !== "reference";
  const plan = planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean);
  const distinct = distinctBatches(plan);
  const batches = optimized ? distinct : plan;
  const plane = L * size0[0] * size0[1];
  const diffOut = tensorOutput(ctx, "diff", "U8", [N, L, ...size0]);
  // A later (overlapping) batch overwrites its frames entirely: stream only the rows no later batch rewrites.
  const owned = finalRows(batches);
  for (const [bi, { start, end }] of batches.entries()) {
    const slot = distinct.findIndex((d) => d.start === start && d.end === end);
    const F = end - start, tokens = coarse.shape[2] * coarse.shape[3];
    const d = await svdModulateBatch({
      backbone: p.backbone as BackboneParams,
      sampler: p.sampler as SamplerParams,
      modulation: p.modulation as ModulationParams,
      frames: rowsOf(inputs.frames, "frames", start, end) as Tensor<"U8">,
      condNoise,
      z0: rowsOf(inputs.invert, "z0", start, end) as Tensor<"F32">,
      eps,
      coarse: coarse.data.subarray(slot * F * tokens, (slot + 1) * F * tokens),
      labels,
      size0,
      skipAbsent: optimized,
      onProgress: (x) => ctx.progress(Math.round(100 * (bi + x)) / 100, batches.length, "batches modulated"),
    });
    const [a, b] = owned[bi];
    if (b > a) {
      diffOut.append({
        dtype: "U8",
        shape: [b - a, L, ...size0],
        data: d.data.subarray((a - start) * plane, (b - start) * plane),
      });
    }
  }
  return { tensors: diffOut.result(), json: { labels } };
}
