/**
 * The SD family behind the {@link Backbone} seam (`backbone.kind: tiny | sd`): text-conditioned UNet with the
 * empty-prompt context, legacy DDPM schedule, one CFG scale, frames denoised independently (a modulated sample is
 * one frame), cross-attention output modulation and attn1 q/k + attn2 out injection (docs/method.md §3, §4, §8).
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { legacyDdpmSchedule } from "../sampler/schedule.ts";
import { addNoise, gaussianNoise } from "../sampler/noise.ts";
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
import { tapName } from "./unet.ts";
import { condOf, MICRO_BATCH, unetLayoutOf, unetRowBytes, vaeOf, VariantRunner } from "./models.ts";
import {
  modulatedPass,
  type ModulationSettings,
  type PassSettings,
  unmodulatedPass,
  type UnmodulatedRecord,
} from "./passes.ts";

/** Decoder positions whose attention is injected (every up-path position with a transformer, 3..11). */
export const INJECT_POSITIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Tap names injected at positions `ps`: attn1 q, attn1 k and attn2 out of each. */
function injectNamesAt(ps: readonly number[]): string[] {
  return ps.flatMap((i) => [tapName(i, "attn1_q"), tapName(i, "attn1_k"), tapName(i, "attn2_out")]);
}

/**
 * Group size and backend batch from a memory budget: half of it for the group's own tensors (injected attention
 * of one step, prefix, decoded images), half for one backend run's activations. On CPU the backend batch is also
 * capped at the runner's {@link MICRO_BATCH}: larger onnxruntime batches are not faster there (cache-bound), and
 * only cost memory; on CUDA the budget alone decides.
 */
export function sdGroupOptions(
  b: BackboneParams,
  latent: readonly [number, number],
  image: readonly [number, number],
  injectPositions: readonly number[],
  splitAt: number,
  budget: number,
): GroupOptions {
  const r = unetRowBytes(unetLayoutOf(b), latent[0], latent[1], injectPositions, splitAt);
  const perSample = 2 * (r.injected + r.prefix) + image[0] * image[1] * 3 * 5; // decoded F32 + U8 copy
  return {
    groupSamples: Math.max(1, Math.floor(budget / 2 / perSample)),
    microBatch: Math.min(
      Math.max(2, Math.floor(budget / 2 / r.activations)),
      b.provider === "cuda" ? Infinity : MICRO_BATCH,
    ),
  };
}

/** What {@link SdBackbone.record} keeps for the modulated passes of one batch. */
interface SdRecord extends PassRecord {
  x0: Tensor<"F32">;
  pass: UnmodulatedRecord;
  settings: PassSettings;
  mod: ModulationSettings;
  runner: VariantRunner;
  setup: ModulationSetup;
  injectPositions: readonly number[];
}

export class SdBackbone implements Backbone {
  readonly coupledFrames = false;
  readonly prefixReuse = true;
  constructor(readonly params: BackboneParams) {}

  async encode(frames: Tensor<"U8">): Promise<Tensor<"F32">> {
    return (await vaeOf(this.params)).encode(framesToImages01(frames));
  }

  noise(seed: number, F: number, latent: readonly number[]): Record<string, Tensor<"F32">> {
    return { eps: gaussianNoise(seed, [F, ...latent]) };
  }

  async features(batch: BatchInput, s: SamplerParams, blocks: readonly number[]) {
    const schedule = legacyDdpmSchedule(s.steps);
    const taps = blocks.map((i) => tapName(i, "attn1_q"));
    const runner = new VariantRunner(this.params, 7, []);
    const x = addNoise(batch.z0, schedule.sigmas[s.t_m], batch.noise.eps as Tensor<"F32">);
    const rec = await unmodulatedPass(runner, x, {
      schedule,
      start: s.t_m,
      end: s.t_f + 1,
      guidance: s.guidance,
      cond: await condOf(this.params),
    }, { taps, tapsOnlyAtLast: true, lastStepTruncated: true });
    const last = rec.taps.at(-1)!;
    const F = batch.z0.shape[0];
    const out: Record<number, Tensor<"F32">> = {};
    for (const [j, i] of blocks.entries()) {
      const t = last[taps[j]]; // [2F, n, C]: keep the conditional half
      const per = t.shape[1] * t.shape[2];
      out[i] = f32([F, t.shape[1], t.shape[2]], t.data.subarray(F * per, 2 * F * per));
    }
    return out;
  }

  async record(batch: BatchInput, setup: ModulationSetup): Promise<SdRecord> {
    const { sampler: s, modulation: m } = setup;
    if (m.attn !== "cross") throw new Error("modulate: self-attention modulation is the SVD setting (not for SD)");
    const schedule = legacyDdpmSchedule(s.steps);
    const settings: PassSettings = {
      schedule,
      start: s.t_m,
      end: s.steps,
      guidance: s.guidance,
      cond: await condOf(this.params),
    };
    const [F, , h, w] = batch.z0.shape;
    const gh = h / 2, gw = w / 2;
    const injectPositions = m.injection ? INJECT_POSITIONS : [];
    const injectNames = injectNamesAt(injectPositions);
    const runner = new VariantRunner(this.params, m.block, injectPositions);
    const mod: ModulationSettings = {
      lambda: m.lambda,
      tokens: gh * gw,
      injection: m.injection,
      injectNames,
      // Blending on steps t_m..t_m+1 (SD code), or to the last step with blend_until_end (docs/method.md §8.4).
      blendEnd: !m.latent_blending ? -1 : m.blend_until_end ? s.steps - 1 : s.t_m + 1,
      grid: [gh, gw],
      reusePrefix: setup.reusePrefix,
      // At the split (the modulated block's input) only positions from there on still read injected tensors.
      prefixInjectNames: injectNamesAt(injectPositions.filter((i) => i >= runner.splitPosition)),
    };
    const x0 = addNoise(batch.z0, schedule.sigmas[s.t_m], batch.noise.eps as Tensor<"F32">);
    const pass = await unmodulatedPass(runner, x0, settings, { taps: injectNames, recordPrefix: setup.reusePrefix });
    return { frames: F, x0, pass, settings, mod, runner, setup, injectPositions };
  }

  groupOptions(record: PassRecord, budget: number): GroupOptions {
    const r = record as SdRecord;
    const [, , h, w] = r.x0.shape;
    return sdGroupOptions(this.params, [h, w], [h * 8, w * 8], r.injectPositions, r.setup.modulation.block, budget);
  }

  async modulate(record: PassRecord, samples: readonly ModSample[], microBatch?: number): Promise<Tensor<"U8">> {
    const r = record as SdRecord;
    const one = samples.map((q) => {
      if (q.frames.length !== 1) throw new Error("SD modulation: a sample is one frame");
      return { frame: q.frames[0], mask: q.masks[0], sign: q.sign };
    });
    const xT = await modulatedPass(r.runner, r.x0, r.pass, one, r.settings, { ...r.mod, microBatch });
    const vae = await vaeOf(this.params, r.setup.modulation.decoder);
    return images01ToFrames(await vae.decode(xT));
  }
}
