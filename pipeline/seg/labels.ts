/**
 * Difference maps → full-resolution labels (docs/method.md §8.5–8.6, `compute_difference`, `get_seg_map_main`,
 * `filter_difference_map`).
 *
 * Per label L and frame: D_L = ‖I⁺ − I⁻‖ over RGB at the original size, either with the reference's uint8
 * arithmetic (`reference_uint8`: each channel difference and its square wrap modulo 256, so |d| = 16 → 0) or in
 * float (`float_l2`); then `cv2.GaussianBlur((5,5), 3)`, then float → 8-bit as PIL's F → L conversion (float32,
 * clip, truncate). The JPEG round-trip of the reference is skipped (documented deviation). Then
 * D̂_L = D_L / (max D_L + 1e−5), optionally filtered with the coarse mask of L Lanczos-resized to the frame size:
 * D̃ = D̂·m̂ + s·D̂·(1 − m̂) (s = 1 switches filtering off), and label = Labels[argmax_L D̃_L] (ties → first).
 * @module
 */
import { gaussianBlur5, resizeLanczosPil } from "../tensor/ops.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";

/** How differences are computed (config `modulation.difference_mode`). */
export type DifferenceMode = "reference_uint8" | "float_l2";

/** Unblurred per-pixel RGB difference norm of two U8 [H, W, 3] images, as float64 [H·W]. */
export function rgbDifference(plus: Tensor<"U8">, minus: Tensor<"U8">, mode: DifferenceMode): Float64Array {
  if (plus.shape.join() !== minus.shape.join() || plus.shape.length !== 3 || plus.shape[2] !== 3) {
    throw new Error(
      `rgbDifference: expected two U8 [H, W, 3] images, got [${plus.shape}] and [${minus.shape}]`,
    );
  }
  const n = plus.shape[0] * plus.shape[1], a = plus.data, b = minus.data, out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const d = a[i * 3 + c] - b[i * 3 + c];
      // numpy uint8: (a − b) wraps, then d² wraps; the channel sum is widened (no further wrap)
      s += mode === "reference_uint8" ? ((d & 255) * (d & 255)) & 255 : d * d;
    }
    out[i] = Math.sqrt(s);
  }
  return out;
}

/** PIL `Image.fromarray(float64).convert("L")`: to float32, clip to [0, 255], truncate. */
export function floatToL(values: Float64Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Math.fround(values[i]);
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}

/** The stored 8-bit difference map of one label and frame: difference, Gaussian blur, float → L. */
export function differenceMap(plus: Tensor<"U8">, minus: Tensor<"U8">, mode: DifferenceMode): Tensor<"U8"> {
  const [H, W] = plus.shape;
  return u8([H, W], floatToL(gaussianBlur5(rgbDifference(plus, minus, mode), H, W, 3)));
}

/** Coarse masks of one frame for filtering: label grid [h·w] of the coarse (CBR-refined) map. */
export interface CoarseGrid {
  labels: ArrayLike<number>;
  h: number;
  w: number;
}

/**
 * The soft mask m̂ of label L: the 0/255 coarse mask Lanczos-resized (PIL, 8-bit) to H×W, /255.
 */
export function softMask(grid: CoarseGrid, label: number, H: number, W: number): Float64Array {
  const m = new Uint8Array(grid.h * grid.w);
  for (let i = 0; i < m.length; i++) m[i] = grid.labels[i] === label ? 255 : 0;
  const up = resizeLanczosPil(u8([grid.h, grid.w], m), H, W).data;
  const out = new Float64Array(H * W);
  for (let i = 0; i < out.length; i++) out[i] = up[i] / 255;
  return out;
}

/** Options of the label decision. */
export interface LabelOptions {
  /** Outside-mask factor s (config `modulation.filter_strength`; 1.0 = no filtering). */
  filterStrength: number;
  /** Coarse map of this frame; required when filterStrength ≠ 1. */
  coarse?: CoarseGrid;
}

/**
 * §8.6 for one frame: `diffs[i]` is the 8-bit difference map of `labels[i]` (U8 [H, W]); returns I32 [H, W]
 * label values.
 */
export function labelsFromDifferences(
  diffs: readonly Tensor<"U8">[],
  labels: readonly number[],
  opts: LabelOptions,
): Tensor<"I32"> {
  if (diffs.length !== labels.length || diffs.length === 0) {
    throw new Error(`labelsFromDifferences: ${diffs.length} maps for ${labels.length} labels`);
  }
  const [H, W] = diffs[0].shape, n = H * W;
  const filtering = opts.filterStrength !== 1;
  if (filtering && !opts.coarse) throw new Error("labelsFromDifferences: filtering needs the coarse map");
  const best = new Float64Array(n).fill(-Infinity), arg = new Int32Array(n);
  diffs.forEach((d, li) => {
    if (d.shape[0] !== H || d.shape[1] !== W) {
      throw new Error(`labelsFromDifferences: map ${li} is [${d.shape}], expected [${H},${W}]`);
    }
    let max = 0;
    for (let i = 0; i < n; i++) if (d.data[i] > max) max = d.data[i];
    const denom = max + 1e-5;
    const m = filtering ? softMask(opts.coarse!, labels[li], H, W) : null;
    const s = opts.filterStrength;
    for (let i = 0; i < n; i++) {
      let v = d.data[i] / denom;
      if (m) v = v * m[i] + s * v * (1 - m[i]);
      if (v > best[i]) (best[i] = v), (arg[i] = li);
    }
  });
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = labels[arg[i]];
  return { dtype: "I32", shape: [H, W], data: out };
}

/** Both steps for one frame from its decoded ± image pairs (`pairs[i]` belongs to `labels[i]`). */
export function labelsFromImagePairs(
  pairs: readonly { plus: Tensor<"U8">; minus: Tensor<"U8"> }[],
  labels: readonly number[],
  mode: DifferenceMode,
  opts: LabelOptions,
): Tensor<"I32"> {
  return labelsFromDifferences(pairs.map((p) => differenceMap(p.plus, p.minus, mode)), labels, opts);
}
