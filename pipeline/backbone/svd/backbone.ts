/**
 * The SVD family behind the {@link Backbone} seam (`backbone.kind: svd`, docs/method.md §1.2, §4, §8): the frames
 * of a batch are ONE video (a modulated sample re-denoises all of them, one mask per frame), conditioned on the
 * batch's first frame (CLIP image embedding + noise-augmented latent), EDM schedule with v-prediction, per-frame
 * linear CFG; features = spatial self-attention queries; modulation of the spatial and temporal self-attention
 * outputs; temporal q/k injection at positions 3..11; frame-by-frame decode.
 *
 * The conditioning's only randomness, the cond_aug noise, is drawn with ε ({@link SvdBackbone.noise}: tensor
 * `cond_noise` [1, 3, H, W]); the conditioning itself is recomputed per batch where needed.
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { edmSchedule } from "../sampler/schedule.ts";
import { addNoise, gaussianNoise } from "../sampler/noise.ts";
import { linearFrameScales } from "../sampler/cfg.ts";
import { posLabel } from "../blocks/taps.ts";
import { framesToImages01, images01ToFrames } from "../frames.ts";
import type {
  Backbone,
  BackboneParams,
  BatchInput,
  GroupOptions,
  ModSample,
  ModulationSetup,
  PassRecord,
  SamplerParams,
} from "../types.ts";
import { svdCondNoise, svdConditioning, svdDecoderOf, svdVaeOf } from "./models.ts";
import { vaeBatch } from "../pool.ts";
import {
  type SvdModulationSettings,
  svdModulatedPasses,
  type SvdPassSettings,
  type SvdRecord,
  svdUnmodulatedPass,
  SvdVariantRunner,
} from "./passes.ts";

/** Up-path positions whose temporal self-attention q/k are injected (docs/method.md §8.3, SVD). */
export const SVD_INJECT_POSITIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11];

/** SVD tap name of a transformer tensor at up-path position i, e.g. `up.pos07.spatial.attn1_q`. */
export function svdTap(i: number, kind: "spatial.attn1_q" | "temporal.attn1_q" | "temporal.attn1_k"): string {
  return `${posLabel(i)}.${kind}`;
}

/** Pass settings of one batch of F frames. */
function passSettings(s: SamplerParams, F: number, cond: SvdPassSettings["cond"], end: number): SvdPassSettings {
  return {
    schedule: edmSchedule(s.steps),
    start: s.t_m,
    end,
    frameScales: linearFrameScales(F, 1.0, s.guidance),
    cond,
  };
}

/** What {@link SvdBackbone.record} keeps for the modulated passes of one batch. */
interface SvdBatchRecord extends PassRecord {
  x0: Tensor<"F32">;
  pass: SvdRecord;
  settings: SvdPassSettings;
  mod: SvdModulationSettings;
  runner: SvdVariantRunner;
  setup: ModulationSetup;
  /** Frame size [H, W] of the decoded images. */
  image: [number, number];
}

export class SvdBackbone implements Backbone {
  readonly coupledFrames = true;
  readonly prefixReuse = false;
  constructor(readonly params: BackboneParams) {}

  async encode(frames: Tensor<"U8">): Promise<Tensor<"F32">> {
    return (await svdVaeOf(this.params, vaeBatch(this.params.provider))).encode(framesToImages01(frames));
  }

  /** ε and the conditioning frame's cond_aug noise (the same for every batch). */
  noise(seed: number, F: number, latent: readonly number[], frameSize: readonly [number, number]) {
    return { eps: gaussianNoise(seed, [F, ...latent]), cond_noise: svdCondNoise(seed, frameSize[0], frameSize[1]) };
  }

  /** Taps the spatial self-attention queries at t_f, conditioned on the batch's first frame. */
  async features(batch: BatchInput, s: SamplerParams, blocks: readonly number[]) {
    const { z0 } = batch;
    const F = z0.shape[0];
    const cond = await svdConditioning(this.params, batch.frames(), condNoiseOf(batch));
    const settings = passSettings(s, F, cond, s.t_f + 1);
    const x = addNoise(z0, settings.schedule.sigmas[s.t_m], batch.noise.eps as Tensor<"F32">);
    const names = blocks.map((i) => svdTap(i, "spatial.attn1_q"));
    const runner = new SvdVariantRunner(this.params, F, 8, []);
    const rec = await svdUnmodulatedPass(runner, x, settings, {
      taps: names,
      tapsOnlyAtLast: true,
      lastStepTruncated: true,
    });
    const last = rec.taps[rec.taps.length - 1];
    const out: Record<number, Tensor<"F32">> = {};
    for (const [j, i] of blocks.entries()) {
      const t = last[names[j]]; // [2F, n, C]: keep the conditional video
      const per = t.shape[1] * t.shape[2];
      out[i] = f32([F, t.shape[1], t.shape[2]], t.data.subarray(F * per, 2 * F * per));
    }
    return out;
  }

  async record(batch: BatchInput, setup: ModulationSetup): Promise<SvdBatchRecord> {
    const { sampler: s, modulation: m } = setup;
    const [F, , lh, lw] = batch.z0.shape;
    const gh = lh / 2, gw = lw / 2;
    const frames = batch.frames();
    const cond = await svdConditioning(this.params, frames, condNoiseOf(batch));
    const settings = passSettings(s, F, cond, s.steps);
    const injectNames = m.injection
      ? SVD_INJECT_POSITIONS.flatMap((i) => [svdTap(i, "temporal.attn1_q"), svdTap(i, "temporal.attn1_k")])
      : [];
    const runner = new SvdVariantRunner(this.params, F, m.block, m.injection ? SVD_INJECT_POSITIONS : []);
    const x0 = addNoise(batch.z0, settings.schedule.sigmas[s.t_m], batch.noise.eps as Tensor<"F32">);
    const pass = await svdUnmodulatedPass(runner, x0, settings, { taps: injectNames });
    const mod: SvdModulationSettings = {
      lambda: m.lambda,
      tokens: gh * gw,
      injectNames,
      // Blending to the last step with blend_until_end (SVD code), else t_m..t_m+1 (docs/method.md §8.4).
      blendEnd: !m.latent_blending ? -1 : m.blend_until_end ? s.steps - 1 : s.t_m + 1,
      grid: [gh, gw],
    };
    return { frames: F, x0, pass, settings, mod, runner, setup, image: [frames.shape[1], frames.shape[2]] };
  }

  /** A sample is a whole video: its stored temporal q/k, decoded frames and difference-map inputs. */
  groupOptions(record: PassRecord, budget: number): GroupOptions {
    const r = record as SvdBatchRecord;
    const F = r.frames, [H, W] = r.image, [H0, W0] = r.setup.size0;
    const perSample = 2 * Object.values(r.pass.taps[0]).reduce((t, v) => t + v.data.length * 4, 0) +
      F * H * W * 3 * 5 + F * H0 * W0 * 3 * 2;
    return { groupSamples: Math.max(1, Math.floor(budget / 2 / perSample)) };
  }

  async modulate(record: PassRecord, samples: readonly ModSample[]): Promise<Tensor<"U8">> {
    const r = record as SvdBatchRecord;
    const videos = samples.map((q) => {
      if (q.frames.length !== r.frames) throw new Error("SVD modulation: a sample is the whole batch");
      return { masks: q.masks, sign: q.sign };
    });
    const xT = await svdModulatedPasses(r.runner, r.x0, r.pass, videos, r.settings, r.mod);
    const vae = await svdDecoderOf(this.params, r.setup.modulation.decoder);
    return images01ToFrames(await vae.decode(xT)); // [G·F, H, W, 3]
  }
}

function condNoiseOf(batch: BatchInput): Tensor<"F32"> {
  const t = batch.noise.cond_noise as Tensor<"F32"> | undefined;
  if (!t) throw new Error("svd: the batch noise has no cond_noise (not an SVD invert)");
  return t;
}
