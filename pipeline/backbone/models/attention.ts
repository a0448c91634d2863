/**
 * diffusers Attention, BasicTransformerBlock and Transformer2DModel (SD 1.x/2.x spatial transformer):
 * parameter specs and graph builders, with hooks on the first transformer block for the paper's needs —
 * taps of attn1 q/k, attn2 q/k/out; injection of attn1 q/k and attn2 out; additive modulation of the
 * attn2 output before its residual add.
 * @module
 */
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { groupNormFrom, normSpec, type SpecFn } from "./resnet.ts";

/** Tensors of a transformer block the hooks can see: Linear outputs before head split, [B, tokens, C]. */
export type AttnTapKind = "attn1_q" | "attn1_k" | "attn2_q" | "attn2_k" | "attn2_out";

/** Hooks applied to transformer_blocks[0] of one Transformer2DModel. */
export interface TransformerHooks {
  /** Called with every tensor of interest (after injection and modulation were applied). */
  tap?: (kind: AttnTapKind, value: string) => void;
  /** Values used instead of the computed attn1 q/k and attn2 output. */
  inject?: Partial<Record<"attn1_q" | "attn1_k" | "attn2_out", string>>;
  /** [B, tokens, 1] added to the attn2 output (incl. to_out) before the residual add. */
  modulation?: string;
}

/** Dimensions of a Transformer2DModel. */
export interface TransformerDims {
  ch: number;
  heads: number;
  crossDim: number;
  groups: number;
  depth: number;
  linearProjection: boolean;
}

/** Parameters of a diffusers Attention (q/k/v without bias, to_out.0 with bias). */
export function attentionSpec(
  add: SpecFn,
  prefix: string,
  queryDim: number,
  kvDim: number,
  inner: number,
): void {
  add(`${prefix}.to_q.weight`, [inner, queryDim]);
  add(`${prefix}.to_k.weight`, [inner, kvDim]);
  add(`${prefix}.to_v.weight`, [inner, kvDim]);
  add(`${prefix}.to_out.0.weight`, [queryDim, inner]);
  add(`${prefix}.to_out.0.bias`, [queryDim]);
}

/** Parameters of a Transformer2DModel (SD spatial transformer with GEGLU feed-forward). */
export function transformer2dSpec(add: SpecFn, prefix: string, d: TransformerDims): void {
  const C = d.ch;
  normSpec(add, `${prefix}.norm`, C);
  add(`${prefix}.proj_in.weight`, d.linearProjection ? [C, C] : [C, C, 1, 1]);
  add(`${prefix}.proj_in.bias`, [C]);
  for (let t = 0; t < d.depth; t++) {
    const b = `${prefix}.transformer_blocks.${t}`;
    normSpec(add, `${b}.norm1`, C);
    attentionSpec(add, `${b}.attn1`, C, C, C);
    normSpec(add, `${b}.norm2`, C);
    attentionSpec(add, `${b}.attn2`, C, d.crossDim, C);
    normSpec(add, `${b}.norm3`, C);
    add(`${b}.ff.net.0.proj.weight`, [8 * C, C]);
    add(`${b}.ff.net.0.proj.bias`, [8 * C]);
    add(`${b}.ff.net.2.weight`, [C, 4 * C]);
    add(`${b}.ff.net.2.bias`, [C]);
  }
  add(`${prefix}.proj_out.weight`, d.linearProjection ? [C, C] : [C, C, 1, 1]);
  add(`${prefix}.proj_out.bias`, [C]);
}

const lin = (g: GraphBuilder, w: WeightSource, key: string, x: string, bias = false) =>
  g.linear(
    x,
    { weight: w.take(`${key}.weight`), bias: bias ? w.take(`${key}.bias`) : undefined },
    key.split(".").slice(-1)[0],
  );

const ln = (g: GraphBuilder, w: WeightSource, key: string, x: string) =>
  g.layerNorm(x, { eps: 1e-5, weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) });

/** Attention core after the projections: heads, scores, softmax, ·v, merge, to_out.0. */
function attendAndProject(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  q: string,
  k: string,
  v: string,
  ch: number,
  heads: number,
): string {
  const a = g.attention(q, k, v, { heads, headDim: ch / heads });
  return lin(g, w, `${prefix}.to_out.0`, a, true);
}

/** BasicTransformerBlock on tokens [B, N, C]; hooks apply only when given (block 0). */
export function basicTransformerBlockGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: TransformerDims,
  x: string,
  context: string,
  hooks: TransformerHooks = {},
): string {
  return g.scope(prefix, () => {
    const tap = hooks.tap ?? (() => {});
    const inj = hooks.inject ?? {};
    // Self-attention.
    const n1 = ln(g, w, `${prefix}.norm1`, x);
    const q1 = inj.attn1_q ?? lin(g, w, `${prefix}.attn1.to_q`, n1);
    const k1 = inj.attn1_k ?? lin(g, w, `${prefix}.attn1.to_k`, n1);
    tap("attn1_q", q1);
    tap("attn1_k", k1);
    const v1 = lin(g, w, `${prefix}.attn1.to_v`, n1);
    let h = g.add(attendAndProject(g, w, `${prefix}.attn1`, q1, k1, v1, d.ch, d.heads), x);
    // Cross-attention (q from the latent, k/v from the text context).
    const n2 = ln(g, w, `${prefix}.norm2`, h);
    let a2: string;
    if (inj.attn2_out) a2 = inj.attn2_out;
    else {
      const q2 = lin(g, w, `${prefix}.attn2.to_q`, n2);
      const k2 = lin(g, w, `${prefix}.attn2.to_k`, context);
      tap("attn2_q", q2);
      tap("attn2_k", k2);
      const v2 = lin(g, w, `${prefix}.attn2.to_v`, context);
      a2 = attendAndProject(g, w, `${prefix}.attn2`, q2, k2, v2, d.ch, d.heads);
    }
    if (hooks.modulation) a2 = g.add(a2, hooks.modulation);
    tap("attn2_out", a2);
    h = g.add(a2, h);
    // GEGLU feed-forward.
    const n3 = ln(g, w, `${prefix}.norm3`, h);
    const ff = g.geglu(n3, {
      weight: w.take(`${prefix}.ff.net.0.proj.weight`),
      bias: w.take(`${prefix}.ff.net.0.proj.bias`),
    });
    return g.add(lin(g, w, `${prefix}.ff.net.2`, ff, true), h);
  });
}

/**
 * Transformer2DModel on NCHW x: GroupNorm(eps 1e-6) → proj_in (Linear on tokens, or 1×1 conv before
 * flattening) → transformer blocks → proj_out → + x. Tokens are row-major (token = row·w + col).
 */
export function transformer2dGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: TransformerDims,
  x: string,
  context: string,
  hooks: TransformerHooks = {},
): string {
  return g.scope(prefix, () => {
    const C = d.ch;
    const toTokens = (t: string) => g.transpose(g.reshape(t, [0, C, -1]), [0, 2, 1]);
    const xShape = g.shape(x);
    let h = groupNormFrom(g, w, `${prefix}.norm`, x, d.groups, 1e-6);
    const conv1x1 = (key: string, t: string) =>
      g.conv2d(t, { weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) });
    h = d.linearProjection
      ? lin(g, w, `${prefix}.proj_in`, toTokens(h), true)
      : toTokens(conv1x1(`${prefix}.proj_in`, h));
    for (let t = 0; t < d.depth; t++) {
      h = basicTransformerBlockGraph(
        g,
        w,
        `${prefix}.transformer_blocks.${t}`,
        d,
        h,
        context,
        t === 0 ? hooks : {},
      );
    }
    const toImage = (t: string) => g.reshapeTo(g.transpose(t, [0, 2, 1]), xShape);
    h = d.linearProjection
      ? toImage(lin(g, w, `${prefix}.proj_out`, h, true))
      : conv1x1(`${prefix}.proj_out`, toImage(h));
    return g.add(h, x);
  });
}
