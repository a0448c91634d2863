/**
 * The seam between the method and its diffusion models: what a {@link Backbone} offers the stages. Stages see
 * frames, latents, masks and decoded images; everything that differs between model families (conditioning,
 * preconditioning, guidance, which attention is modulated or injected, which steps blend) stays behind it.
 * `backbone.ts` re-exports these types with `openBackbone`; family folders (`sd/`, `svd/`) implement them.
 * @module
 */
import type { VidsegConfig } from "../config/schema.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Config group `backbone`. */
export type BackboneParams = VidsegConfig["backbone"];
/** Config group `sampler` (for SVD `guidance` is the last frame's scale of the 1 → max ramp). */
export type SamplerParams = VidsegConfig["sampler"];
/** Config group `modulation`. */
export type ModulationParams = VidsegConfig["modulation"];

/** One batch of a clip: F consecutive frames, their latents and the noise the `invert` stage drew. */
export interface BatchInput {
  /** Frames U8 [F, H, W, 3], loaded on demand (only image-conditioned families read them). */
  frames(): Tensor<"U8">;
  /** UNet-scaled latents [F, 4, h, w]. */
  z0: Tensor<"F32">;
  /** The method's noise of the batch: `eps` [F, 4, h, w] plus family extras (see {@link Backbone.noise}). */
  noise: Record<string, Tensor>;
}

/** One modulated sample: frames of the batch re-denoised together, one mask per frame (null = zeros), a sign. */
export interface ModSample {
  /** Frame indices of the batch re-denoised in this sample. */
  frames: readonly number[];
  /** Per frame, the 0/1 mask on the feature grid (latent h/2 × w/2, row-major), or null. */
  masks: readonly (Uint8Array | null)[];
  /** +1 or −1. */
  sign: number;
}

/** What the modulated re-denoising of one batch is set up with. */
export interface ModulationSetup {
  /** Steps, t_m, t_f and guidance of the row. */
  sampler: SamplerParams;
  /** λ, blending, injection and decoder of the row. */
  modulation: ModulationParams;
  /** Resume the first modulated step from the unmodulated pass's UNet prefix (families that support it). */
  reusePrefix: boolean;
  /** Original frame size [H0, W0] the difference maps are taken at (memory estimates). */
  size0: readonly [number, number];
}

/** The unmodulated pass of one batch: what its modulated re-denoisings reuse (family-specific inside). */
export interface PassRecord {
  /** Frames of the batch. */
  readonly frames: number;
}

/** Knobs of one modulated group derived from a memory budget. */
export interface GroupOptions {
  /** Samples per group (even: a sample's ± pair stays together). */
  groupSamples: number;
  /** Backend batch (UNet rows per run), when the family sizes it. */
  microBatch?: number;
}

/** A diffusion model family behind the method's stages. */
export interface Backbone {
  /** The config group it was opened with. */
  readonly params: BackboneParams;
  /**
   * Whether the frames of a batch are one video (temporal attention couples them): a modulated sample then
   * re-denoises every frame of the batch; otherwise a sample is one frame.
   */
  readonly coupledFrames: boolean;
  /** Whether {@link ModulationSetup.reusePrefix} is honoured. */
  readonly prefixReuse: boolean;
  /** Frames U8 [n, H, W, 3] → UNet-scaled latents [n, 4, H/8, W/8] (posterior mean). */
  encode(frames: Tensor<"U8">): Promise<Tensor<"F32">>;
  /** The noise every batch receives (the reference re-seeds per batch): `eps` [F, …latent] plus family extras. */
  noise(seed: number, batchFrames: number, latent: readonly number[], frameSize: readonly [number, number]): Record<string, Tensor<"F32">>;
  /**
   * The unmodulated pass from x_{t_m} = z0 + σ_{t_m}·ε to step t_f, tapped there: per block of `blocks`, the
   * self-attention queries of the conditional half, [F, tokens, C].
   */
  features(batch: BatchInput, sampler: SamplerParams, blocks: readonly number[]): Promise<Record<number, Tensor<"F32">>>;
  /** The unmodulated pass t_m → end, recording what modulated passes inject and blend with. */
  record(batch: BatchInput, setup: ModulationSetup): Promise<PassRecord>;
  /** Group size (and backend batch) of modulated samples for a memory budget in bytes. */
  groupOptions(record: PassRecord, budget: number): GroupOptions;
  /**
   * Re-denoise `samples` from the record's x_{t_m} with sign·λ·mask modulation at step t_m, then decode:
   * frames U8 [Σ samples' frames, H, W, 3] in sample order.
   */
  modulate(record: PassRecord, samples: readonly ModSample[], microBatch?: number): Promise<Tensor<"U8">>;
}
