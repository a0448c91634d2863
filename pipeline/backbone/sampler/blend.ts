/**
 * Latent blending (docs/method.md §8.4): after a modulated step, keep the modulated latent inside the label's mask
 * and restore the unmodulated pass's latent outside it: x ← M ⊙ x + (1 − M) ⊙ x_orig. The mask is given per
 * frame at the feature grid (H/16 × W/16), upsampled ×2 nearest to the latent grid (H/8 × W/8) and broadcast
 * over the latent channels.
 * @module
 */
import { f32, type Tensor } from "../../tensor/tensor.ts";

/** A per-frame mask [F, h, w] (0/1 or soft weights in [0, 1]). */
export type FrameMask = Tensor<"F32"> | Tensor<"U8">;

/** Nearest ×2 upsampling of a [F, h, w] mask to [F, 2h, 2w]: out[y][x] = in[y >> 1][x >> 1]. */
export function upsampleMask2x(mask: FrameMask): Tensor<"F32"> {
  if (mask.shape.length !== 3) throw new Error(`blend: mask must be [F, h, w], got [${mask.shape}]`);
  const [F, h, w] = mask.shape;
  const H = 2 * h, W = 2 * w;
  const out = new Float32Array(F * H * W);
  const m = mask.data;
  for (let f = 0; f < F; f++) {
    for (let y = 0; y < H; y++) {
      const src = (f * h + (y >> 1)) * w, dst = (f * H + y) * W;
      for (let x = 0; x < W; x++) out[dst + x] = m[src + (x >> 1)];
    }
  }
  return f32([F, H, W], out);
}

/**
 * x ← M ⊙ x + (1 − M) ⊙ x_orig for latents [F, C, 2h, 2w] and a mask [F, h, w]; returns a new tensor.
 */
export function blendLatents(x: Tensor<"F32">, xOrig: Tensor<"F32">, mask: FrameMask): Tensor<"F32"> {
  if (x.shape.join() !== xOrig.shape.join()) {
    throw new Error(`blend: latents [${x.shape}] vs original [${xOrig.shape}]`);
  }
  if (x.shape.length !== 4) throw new Error(`blend: latents must be [F, C, H, W], got [${x.shape}]`);
  const [F, C, H, W] = x.shape;
  const up = upsampleMask2x(mask);
  if (up.shape[0] !== F || up.shape[1] !== H || up.shape[2] !== W) {
    throw new Error(`blend: mask [${mask.shape}] does not upsample ×2 to latent grid ${F}×${H}×${W}`);
  }
  const out = new Float32Array(x.data.length);
  const a = x.data, b = xOrig.data, m = up.data, hw = H * W;
  for (let f = 0; f < F; f++) {
    for (let c = 0; c < C; c++) {
      const base = (f * C + c) * hw, mb = f * hw;
      for (let j = 0; j < hw; j++) {
        const mj = m[mb + j];
        out[base + j] = mj * a[base + j] + (1 - mj) * b[base + j];
      }
    }
  }
  return f32(x.shape, out);
}
