/**
 * The options of an SD UNet graph variant (taps, hooks, truncation, prefix split): shared by the graph builder
 * and the prefix split, so neither imports the other for them.
 * @module
 */

/** Build options of a UNet graph variant. */
export interface UNetBuildOptions {
  /** Tap names to expose as outputs (see module doc). */
  taps?: readonly string[];
  /** Up-path position whose attn2 output receives the `modulation` input ([B, h·w, 1]). */
  modulationPosition?: number | null;
  /** Up-path positions whose attn1 q/k and attn2 output are graph inputs `inject.posII.{kind}`. */
  injectPositions?: readonly number[];
  /** Output only the taps, pruning everything after the deepest one (no `eps` output). */
  truncate?: boolean;
  /** Also output the `prefix.*` tensors entering up-path position p (see module doc). */
  exposePrefixAt?: number | null;
  /** Build only the suffix from up-path position p on, fed by `prefix.*` inputs (see module doc). */
  resumeAt?: number | null;
}
