/**
 * Graph pieces of the diffusers `AutoencoderKL` encoder/decoder (no time embedding anywhere): ResnetBlock2D,
 * the stride-2 Downsample2D with diffusers' asymmetric (0,1,0,1) padding, Upsample2D (nearest ×2 + conv), and the
 * single-head mid-block self-attention with its own GroupNorm and residual. Each helper also adds its parameter
 * shapes to a spec, so the expected key set and the graph come from the same code.
 * @module
 */
import type { Tensor } from "../../tensor/tensor.ts";
import type { GraphBuilder } from "../onnx/builder.ts";
import type { ParamSpec, WeightSource } from "../weights/weight_map.ts";

/** Hyper-parameters shared by all VAE blocks. */
export interface VaeBlockParams {
  groups: number;
  /** GroupNorm eps (1e-6 in every diffusers VAE norm). */
  eps: number;
}

/** Either collects the parameter spec (`g` absent) or builds the graph from the weights. */
export interface BlockContext {
  g?: GraphBuilder;
  w?: WeightSource;
  spec: ParamSpec;
  p: VaeBlockParams;
}

function param(ctx: BlockContext, key: string, shape: readonly number[]): Tensor {
  ctx.spec.set(key, shape);
  return ctx.w ? ctx.w.take(key) : (undefined as unknown as Tensor);
}

/** Conv2d (square kernel) with bias; `pads` = [top, left, bottom, right]. */
export function vaeConv(
  ctx: BlockContext,
  x: string,
  key: string,
  cin: number,
  cout: number,
  k: number,
  stride = 1,
  pads = [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2],
): string {
  const w = param(ctx, `${key}.weight`, [cout, cin, k, k]);
  const b = param(ctx, `${key}.bias`, [cout]);
  if (!ctx.g) return x;
  const g = ctx.g;
  return g.op("Conv", [x, g.initializer(w, "conv.weight"), g.initializer(b, "conv.bias")], {
    kernel_shape: [k, k],
    pads,
    strides: [stride, stride],
    dilations: [1, 1],
    group: 1,
  }, "conv");
}

/** GroupNorm(groups, eps) with affine weight/bias of C channels. */
export function vaeGroupNorm(ctx: BlockContext, x: string, key: string, c: number): string {
  const weight = param(ctx, `${key}.weight`, [c]);
  const bias = param(ctx, `${key}.bias`, [c]);
  if (!ctx.g) return x;
  return ctx.g.groupNorm(x, { groups: ctx.p.groups, eps: ctx.p.eps, weight, bias });
}

function silu(ctx: BlockContext, x: string): string {
  return ctx.g ? ctx.g.silu(x) : x;
}

/** ResnetBlock2D without time embedding: x' + conv2(silu(norm2(conv1(silu(norm1(x)))))), x' = 1×1 shortcut if cin ≠ cout. */
export function vaeResnet(ctx: BlockContext, x: string, key: string, cin: number, cout: number): string {
  let h = vaeConv(ctx, silu(ctx, vaeGroupNorm(ctx, x, `${key}.norm1`, cin)), `${key}.conv1`, cin, cout, 3);
  h = vaeConv(ctx, silu(ctx, vaeGroupNorm(ctx, h, `${key}.norm2`, cout)), `${key}.conv2`, cout, cout, 3);
  const skip = cin === cout ? x : vaeConv(ctx, x, `${key}.conv_shortcut`, cin, cout, 1);
  return ctx.g ? ctx.g.add(skip, h) : x;
}

/** Downsample2D(use_conv, padding=0): pad right/bottom by one, then 3×3 stride-2 conv. */
export function vaeDownsample(ctx: BlockContext, x: string, key: string, c: number): string {
  return vaeConv(ctx, x, `${key}.conv`, c, c, 3, 2, [0, 0, 1, 1]);
}

/** Upsample2D(use_conv): nearest ×2 then 3×3 conv. */
export function vaeUpsample(ctx: BlockContext, x: string, key: string, c: number): string {
  return vaeConv(ctx, ctx.g ? ctx.g.upsampleNearest2x(x) : x, `${key}.conv`, c, c, 3);
}

/**
 * Mid-block attention (diffusers `Attention` with `_from_deprecated_attn_block`): GroupNorm → tokens [B, HW, C]
 * → single-head softmax(q·kᵀ/√C)·v (q/k/v/out Linears with bias) → back to NCHW → + residual.
 */
export function vaeAttention(ctx: BlockContext, x: string, key: string, c: number): string {
  const h = vaeGroupNorm(ctx, x, `${key}.group_norm`, c);
  const lin = (name: string) => ({
    weight: param(ctx, `${key}.${name}.weight`, [c, c]),
    bias: param(ctx, `${key}.${name}.bias`, [c]),
  });
  const pq = lin("to_q"), pk = lin("to_k"), pv = lin("to_v"), po = lin("to_out.0");
  if (!ctx.g) return x;
  const g = ctx.g;
  const tok = g.transpose(g.reshape(h, [0, 0, -1]), [0, 2, 1]); // [B, HW, C], token = row·W + col
  const a = g.attention(g.linear(tok, pq, "to_q"), g.linear(tok, pk, "to_k"), g.linear(tok, pv, "to_v"), {
    heads: 1,
    headDim: c,
  });
  const out = g.linear(a, po, "to_out");
  return g.add(g.reshapeTo(g.transpose(out, [0, 2, 1]), g.shape(x)), x);
}
