/**
 * Small helpers shared by the diffusion stages: row gathering and the uint8 frame ↔ float image conversions at
 * the VAE boundary.
 * @module
 */
import { f32, numel, type Tensor } from "../tensor/tensor.ts";

/** Rows `idx` of a tensor along its first axis (copy). */
export function gatherFrames<T extends Tensor>(t: T, idx: readonly number[]): T {
  const inner = numel(t.shape.slice(1));
  const Ctor = (t.data as unknown as { constructor: new (n: number) => T["data"] }).constructor;
  const out = new Ctor(idx.length * inner) as unknown as { set(a: ArrayLike<number>, o: number): void };
  idx.forEach((f, b) => out.set((t.data as unknown as Float32Array).subarray(f * inner, (f + 1) * inner), b * inner));
  return { dtype: t.dtype, shape: [idx.length, ...t.shape.slice(1)], data: out } as unknown as T;
}

/** U8 frames [B, H, W, 3] → float images [B, 3, H, W] in [0, 1]. */
export function framesToImages01(frames: Tensor<"U8">): Tensor<"F32"> {
  const [B, H, W] = frames.shape;
  const out = new Float32Array(B * 3 * H * W);
  const src = frames.data, hw = H * W;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < hw; p++) {
      const s = (b * hw + p) * 3;
      for (let c = 0; c < 3; c++) out[(b * 3 + c) * hw + p] = src[s + c] / 255;
    }
  }
  return f32([B, 3, H, W], out);
}

/**
 * Decoded images [B, 3, H, W] (nominally [0, 1]) → U8 [B, H, W, 3] the way the reference saves them:
 * clamp to [0, 1], ×255, truncate (docs/method.md §8.5).
 */
export function images01ToFrames(img: Tensor<"F32">): Tensor<"U8"> {
  const [B, , H, W] = img.shape;
  const out = new Uint8Array(B * H * W * 3);
  const src = img.data, hw = H * W;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < 3; c++) {
      const base = (b * 3 + c) * hw;
      for (let p = 0; p < hw; p++) {
        const v = src[base + p];
        out[(b * hw + p) * 3 + c] = v <= 0 ? 0 : v >= 1 ? 255 : Math.trunc(v * 255);
      }
    }
  }
  return { dtype: "U8", shape: [B, H, W, 3], data: out };
}
