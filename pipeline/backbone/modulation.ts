/**
 * What both families' modulated passes take from the method's config the same way: the steps that blend, the
 * decoder positions whose attention is injected, and the CPU backend batch (docs/method.md §8.3, §8.4).
 * @module
 */
import type { ModulationParams, SamplerParams } from "./types.ts";

/** Up-path positions whose stored attention is injected: every position with a transformer, 3..11. */
export const INJECTED_POSITIONS: readonly number[] = [3, 4, 5, 6, 7, 8, 9, 10, 11];

/** UNet rows (SD samples, SVD frames) per onnxruntime run on CPU: larger runs are not faster there, only bigger. */
export const CPU_ROWS_PER_RUN = 28;

/**
 * Last step of latent blending with the unmodulated pass (inclusive; −1 = none): t_m..t_m+1 as the SD code, or to
 * the last step with `blend_until_end` as the SVD code.
 */
export function blendEnd(s: Pick<SamplerParams, "steps" | "t_m">, m: ModulationParams): number {
  return !m.latent_blending ? -1 : m.blend_until_end ? s.steps - 1 : s.t_m + 1;
}
