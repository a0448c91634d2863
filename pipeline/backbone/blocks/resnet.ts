/**
 * diffusers ResnetBlock2D, Downsample2D and Upsample2D: parameter specs (key → shape) and graph builders.
 * Shared by the UNet and the VAE (pass `tembCh: null` for blocks without a time embedding). Also the video
 * pieces of SVD: TemporalResnetBlock (Conv3d (3,1,1) across frames on [B, C, F, H, W]) and AlphaBlender.
 * @module
 */
import type { GraphBuilder } from "../onnx/builder.ts";
import { halfToFloat } from "../../tensor/tensor.ts";
import type { WeightSource } from "../weights/weight_map.ts";

/** Records one expected parameter (key, shape). */
export type SpecFn = (key: string, shape: readonly number[]) => void;

/** Dimensions of a ResnetBlock2D. */
export interface ResnetDims {
  inCh: number;
  outCh: number;
  /** Channels of the time embedding, or null when the block has no `time_emb_proj`. */
  tembCh: number | null;
  groups: number;
  eps: number;
  /** Output is (shortcut + h) / outScale (diffusers output_scale_factor, default 1). */
  outScale?: number;
}

/** Parameters of a GroupNorm / LayerNorm with affine weights. */
export function normSpec(add: SpecFn, prefix: string, ch: number): void {
  add(`${prefix}.weight`, [ch]);
  add(`${prefix}.bias`, [ch]);
}

/** Parameters of a ResnetBlock2D. */
export function resnetSpec(add: SpecFn, prefix: string, d: ResnetDims): void {
  normSpec(add, `${prefix}.norm1`, d.inCh);
  add(`${prefix}.conv1.weight`, [d.outCh, d.inCh, 3, 3]);
  add(`${prefix}.conv1.bias`, [d.outCh]);
  if (d.tembCh !== null) {
    add(`${prefix}.time_emb_proj.weight`, [d.outCh, d.tembCh]);
    add(`${prefix}.time_emb_proj.bias`, [d.outCh]);
  }
  normSpec(add, `${prefix}.norm2`, d.outCh);
  add(`${prefix}.conv2.weight`, [d.outCh, d.outCh, 3, 3]);
  add(`${prefix}.conv2.bias`, [d.outCh]);
  if (d.inCh !== d.outCh) {
    add(`${prefix}.conv_shortcut.weight`, [d.outCh, d.inCh, 1, 1]);
    add(`${prefix}.conv_shortcut.bias`, [d.outCh]);
  }
}

/** GroupNorm from weights `${prefix}.weight/.bias`. */
export function groupNormFrom(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  x: string,
  groups: number,
  eps: number,
): string {
  return g.groupNorm(x, { groups, eps, weight: w.take(`${prefix}.weight`), bias: w.take(`${prefix}.bias`) });
}

/** Conv2d from weights `${prefix}.weight/.bias`. */
export function convFrom(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  x: string,
  padding: number,
  stride = 1,
): string {
  return g.conv2d(x, { weight: w.take(`${prefix}.weight`), bias: w.take(`${prefix}.bias`), padding, stride });
}

/**
 * ResnetBlock2D: h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb))[:, :, None, None]];
 * h = conv2(silu(norm2(h))); out = (shortcut(x) + h) / outScale. `temb` is the raw time embedding [B, T].
 */
export function resnetGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: ResnetDims,
  x: string,
  temb?: string,
): string {
  return g.scope(prefix, () => {
    let h = g.silu(groupNormFrom(g, w, `${prefix}.norm1`, x, d.groups, d.eps));
    h = convFrom(g, w, `${prefix}.conv1`, h, 1);
    if (d.tembCh !== null) {
      if (!temb) throw new Error(`resnet ${prefix}: time embedding required`);
      const t = g.linear(g.silu(temb), {
        weight: w.take(`${prefix}.time_emb_proj.weight`),
        bias: w.take(`${prefix}.time_emb_proj.bias`),
      }, "time_emb_proj");
      h = g.add(h, g.reshape(t, [0, 0, 1, 1]));
    }
    h = g.silu(groupNormFrom(g, w, `${prefix}.norm2`, h, d.groups, d.eps));
    h = convFrom(g, w, `${prefix}.conv2`, h, 1);
    const sc = d.inCh !== d.outCh ? convFrom(g, w, `${prefix}.conv_shortcut`, x, 0) : x;
    let out = g.add(sc, h);
    if ((d.outScale ?? 1) !== 1) out = g.div(out, g.scalar(d.outScale!));
    return out;
  });
}

/** Parameters of Downsample2D/Upsample2D (one 3×3 conv `${prefix}.conv`). */
export function resampleSpec(add: SpecFn, prefix: string, ch: number): void {
  add(`${prefix}.conv.weight`, [ch, ch, 3, 3]);
  add(`${prefix}.conv.bias`, [ch]);
}

/** Downsample2D with a conv: 3×3, stride 2, symmetric `padding` (UNet: downsample_padding = 1). */
export function downsampleGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  x: string,
  padding = 1,
): string {
  return g.scope(prefix, () => convFrom(g, w, `${prefix}.conv`, x, padding, 2));
}

/** Upsample2D: nearest ×2 then 3×3 conv (padding 1). */
export function upsampleGraph(g: GraphBuilder, w: WeightSource, prefix: string, x: string): string {
  return g.scope(prefix, () => convFrom(g, w, `${prefix}.conv`, g.upsampleNearest2x(x), 1));
}

/** Parameters of a TemporalResnetBlock: like ResnetBlock2D with Conv3d kernels (3, 1, 1) (shortcut 1×1×1). */
export function temporalResnetSpec(add: SpecFn, prefix: string, d: ResnetDims): void {
  normSpec(add, `${prefix}.norm1`, d.inCh);
  add(`${prefix}.conv1.weight`, [d.outCh, d.inCh, 3, 1, 1]);
  add(`${prefix}.conv1.bias`, [d.outCh]);
  if (d.tembCh !== null) {
    add(`${prefix}.time_emb_proj.weight`, [d.outCh, d.tembCh]);
    add(`${prefix}.time_emb_proj.bias`, [d.outCh]);
  }
  normSpec(add, `${prefix}.norm2`, d.outCh);
  add(`${prefix}.conv2.weight`, [d.outCh, d.outCh, 3, 1, 1]);
  add(`${prefix}.conv2.bias`, [d.outCh]);
  if (d.inCh !== d.outCh) {
    add(`${prefix}.conv_shortcut.weight`, [d.outCh, d.inCh, 1, 1, 1]);
    add(`${prefix}.conv_shortcut.bias`, [d.outCh]);
  }
}

/** Conv3d from `${prefix}.weight/.bias` on [B, C, F, H, W] with kernel (k, 1, 1), zero-padded (k−1)/2 frames. */
export function temporalConvFrom(g: GraphBuilder, w: WeightSource, prefix: string, x: string): string {
  const weight = w.take(`${prefix}.weight`);
  const k = weight.shape[2], p = (k - 1) / 2;
  return g.op("Conv", [
    x,
    g.initializer(weight, "conv3d.weight"),
    g.initializer(w.take(`${prefix}.bias`), "conv3d.bias"),
  ], {
    kernel_shape: [k, 1, 1],
    pads: [p, 0, 0, p, 0, 0],
    strides: [1, 1, 1],
    dilations: [1, 1, 1],
    group: 1,
  }, "conv3d");
}

/**
 * TemporalResnetBlock on x [B, C, F, H, W] (GroupNorm statistics span all frames of a video):
 * h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb)) as [B, C, F, 1, 1]]; h = conv2(silu(norm2(h)));
 * out = shortcut(x) + h. `tembBF` is the raw time embedding laid out [B, F, T] (one row per frame).
 */
export function temporalResnetGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: ResnetDims,
  x: string,
  tembBF?: string,
): string {
  return g.scope(prefix, () => {
    const gn = (key: string, t: string) =>
      g.groupNorm(t, {
        groups: d.groups,
        eps: d.eps,
        weight: w.take(`${key}.weight`),
        bias: w.take(`${key}.bias`),
        rank: 5,
      });
    let h = temporalConvFrom(g, w, `${prefix}.conv1`, g.silu(gn(`${prefix}.norm1`, x)));
    if (d.tembCh !== null) {
      if (!tembBF) throw new Error(`temporal resnet ${prefix}: time embedding required`);
      const t = g.linear(g.silu(tembBF), {
        weight: w.take(`${prefix}.time_emb_proj.weight`),
        bias: w.take(`${prefix}.time_emb_proj.bias`),
      }, "time_emb_proj"); // [B, F, C]
      h = g.add(h, g.transpose(g.reshape(t, [0, 0, -1, 1, 1]), [0, 2, 1, 3, 4]));
    }
    h = temporalConvFrom(g, w, `${prefix}.conv2`, g.silu(gn(`${prefix}.norm2`, h)));
    const sc = d.inCh !== d.outCh ? temporalConvFrom(g, w, `${prefix}.conv_shortcut`, x) : x;
    return g.add(sc, h);
  });
}

/** Parameter of an AlphaBlender ("learned" / "learned_with_images"): `${prefix}.mix_factor` [1]. */
export function alphaBlendSpec(add: SpecFn, prefix: string): void {
  add(`${prefix}.mix_factor`, [1]);
}

/**
 * AlphaBlender in video mode (image_only_indicator all zero, so "learned" and "learned_with_images" agree):
 * α = sigmoid(mix_factor) (1 − that when `switchSpatialToTemporal`, the temporal VAE), out = α·xs + (1 − α)·xt.
 * α and 1 − α are folded to constants at build time in float32 as torch computes them (ONNX runtimes cannot
 * always fold an F16 Sigmoid). Returns the blend and α (a [1] constant, for taps).
 */
export function alphaBlendGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  xSpatial: string,
  xTemporal: string,
  switchSpatialToTemporal = false,
): { out: string; alpha: string } {
  return g.scope(prefix, () => {
    const m = w.take(`${prefix}.mix_factor`);
    const raw = m.dtype === "F16" ? halfToFloat((m.data as Uint16Array)[0]) : (m.data as Float32Array)[0];
    const f = Math.fround;
    let a = f(1 / f(1 + f(Math.exp(-raw))));
    if (switchSpatialToTemporal) a = f(1 - a);
    const alpha = g.constant([a]);
    const out = g.add(g.mul(alpha, xSpatial), g.mul(g.constant([f(1 - a)]), xTemporal));
    return { out, alpha };
  });
}
