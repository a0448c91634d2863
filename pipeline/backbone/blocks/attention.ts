/**
 * diffusers Attention, FeedForward (GEGLU), BasicTransformerBlock and Transformer2DModel (SD 1.x/2.x spatial
 * transformer): parameter specs and graph builders, with hooks on the first transformer block for the paper's
 * needs — taps of attn1 q/k/out, attn2 q/k/out; injection of attn1 q/k and attn2 out; additive modulation of the
 * attn2 output (SD) or of the attn1 output (SVD) before its residual add. The attention and feed-forward
 * builders are exported for the other transformer blocks (SVD temporal block, `svd_transformer.ts`).
 * @module
 */
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { groupNormFrom, normSpec, type SpecFn } from "./resnet.ts";

/** Tensors of a transformer block the hooks can see: Linear outputs before head split, [B, tokens, C]. */
export type AttnTapKind = "attn1_q" | "attn1_k" | "attn1_out" | "attn2_q" | "attn2_k" | "attn2_out";

/** Hooks applied to transformer_blocks[0] of one Transformer2DModel. */
export interface TransformerHooks {
  /** Called with every tensor of interest (after injection and modulation were applied). */
  tap?: (kind: AttnTapKind, value: string) => void;
  /** Values used instead of the computed attn1 q/k and attn2 output. */
  inject?: Partial<Record<"attn1_q" | "attn1_k" | "attn2_out", string>>;
  /** [B, tokens, 1] added to the attn2 output (incl. to_out) before the residual add. */
  modulation?: string;
  /** [B, tokens, 1] added to the attn1 output (incl. to_out) before the residual add (SVD self-attention). */
  attn1Modulation?: string;
}

/** Hooks of one {@link attentionGraph} call. */
export interface AttentionHooks {
  /** Used instead of the to_q output. */
  q?: string;
  /** Used instead of the to_k output. */
  k?: string;
  /** Added to the output (after to_out), e.g. a [B, tokens, 1] modulation broadcast over channels. */
  add?: string;
  /** Sees q and k (after injection) and the output (after `add`). */
  tap?: (kind: "q" | "k" | "out", value: string) => void;
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

/** The dimensions a transformer block itself needs (channels = inner dim; head dim = ch / heads). */
export type BlockDims = Pick<TransformerDims, "ch" | "heads">;

/**
 * A transformer (block) graph builder: weights under `prefix`, input `x`, cross-attention `context`; `hooks`
 * apply to the (first) block. Returns the output value.
 */
export type TransformerBuilder<D, H> = (
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: D,
  x: string,
  context: string,
  hooks?: H,
) => string;

/** Builder of a BasicTransformerBlock on tokens. */
export type BasicBlockBuilder = TransformerBuilder<BlockDims, TransformerHooks>;
/** Builder of a Transformer2DModel on NCHW input. */
export type Transformer2dBuilder = TransformerBuilder<TransformerDims, TransformerHooks>;

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

/** Parameters of a diffusers FeedForward with GEGLU (mult 4): net.0.proj [8·dim, dim], net.2 [dimOut, 4·dim]. */
export function feedForwardSpec(add: SpecFn, prefix: string, dim: number, dimOut = dim): void {
  add(`${prefix}.net.0.proj.weight`, [8 * dim, dim]);
  add(`${prefix}.net.0.proj.bias`, [8 * dim]);
  add(`${prefix}.net.2.weight`, [dimOut, 4 * dim]);
  add(`${prefix}.net.2.bias`, [dimOut]);
}

/** Parameters of a BasicTransformerBlock (self-attention, cross-attention, GEGLU feed-forward; C channels). */
export function basicTransformerBlockSpec(add: SpecFn, prefix: string, C: number, crossDim: number): void {
  normSpec(add, `${prefix}.norm1`, C);
  attentionSpec(add, `${prefix}.attn1`, C, C, C);
  normSpec(add, `${prefix}.norm2`, C);
  attentionSpec(add, `${prefix}.attn2`, C, crossDim, C);
  normSpec(add, `${prefix}.norm3`, C);
  feedForwardSpec(add, `${prefix}.ff`, C);
}

/**
 * Parameters of a Transformer2DModel (SD spatial transformer with GEGLU feed-forward); `more` adds the parameters
 * a subclass holds between the blocks and proj_out (SVD's temporal blocks).
 */
export function transformer2dSpec(add: SpecFn, prefix: string, d: TransformerDims, more?: () => void): void {
  const C = d.ch;
  normSpec(add, `${prefix}.norm`, C);
  add(`${prefix}.proj_in.weight`, d.linearProjection ? [C, C] : [C, C, 1, 1]);
  add(`${prefix}.proj_in.bias`, [C]);
  for (let t = 0; t < d.depth; t++) {
    basicTransformerBlockSpec(add, `${prefix}.transformer_blocks.${t}`, C, d.crossDim);
  }
  more?.();
  add(`${prefix}.proj_out.weight`, d.linearProjection ? [C, C] : [C, C, 1, 1]);
  add(`${prefix}.proj_out.bias`, [C]);
}

/** Linear layer `${key}.weight` (+ `${key}.bias` when `bias`) on the last axis. */
export function linearFrom(g: GraphBuilder, w: WeightSource, key: string, x: string, bias = false): string {
  return g.linear(
    x,
    { weight: w.take(`${key}.weight`), bias: bias ? w.take(`${key}.bias`) : undefined },
    key.split(".").slice(-1)[0],
  );
}

/** LayerNorm `${key}` over the last axis (torch default eps 1e-5). */
export function layerNormFrom(g: GraphBuilder, w: WeightSource, key: string, x: string, eps = 1e-5): string {
  return g.layerNorm(x, { eps, weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) });
}

const lin = linearFrom;
const ln = (g: GraphBuilder, w: WeightSource, key: string, x: string) => layerNormFrom(g, w, key, x);

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

/**
 * diffusers Attention on tokens: q = to_q(x), k = to_k(kv), v = to_v(kv) (no biases; kv = x for self-attention),
 * multi-head softmax(q·kᵀ/√d)·v, to_out.0 (with bias), then `hooks.add`. Returns the output before any residual.
 */
export function attentionGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  x: string,
  kv: string,
  ch: number,
  heads: number,
  hooks: AttentionHooks = {},
): string {
  const q = hooks.q ?? lin(g, w, `${prefix}.to_q`, x);
  const k = hooks.k ?? lin(g, w, `${prefix}.to_k`, kv);
  hooks.tap?.("q", q);
  hooks.tap?.("k", k);
  const v = lin(g, w, `${prefix}.to_v`, kv);
  let out = attendAndProject(g, w, prefix, q, k, v, ch, heads);
  if (hooks.add) out = g.add(out, hooks.add);
  hooks.tap?.("out", out);
  return out;
}

/** diffusers FeedForward with GEGLU: net.2(hidden·gelu(gate)), [hidden | gate] = net.0.proj(x). No residual. */
export function feedForwardGraph(g: GraphBuilder, w: WeightSource, prefix: string, x: string): string {
  const ff = g.geglu(x, {
    weight: w.take(`${prefix}.net.0.proj.weight`),
    bias: w.take(`${prefix}.net.0.proj.bias`),
  });
  return lin(g, w, `${prefix}.net.2`, ff, true);
}

/** BasicTransformerBlock on tokens [B, N, C]; hooks apply only when given (block 0). */
export const basicTransformerBlockGraph: BasicBlockBuilder = (g, w, prefix, d, x, context, hooks = {}) =>
  g.scope(prefix, () => {
    const tap = hooks.tap ?? (() => {});
    const inj = hooks.inject ?? {};
    // Self-attention.
    const n1 = ln(g, w, `${prefix}.norm1`, x);
    const a1 = attentionGraph(g, w, `${prefix}.attn1`, n1, n1, d.ch, d.heads, {
      q: inj.attn1_q,
      k: inj.attn1_k,
      add: hooks.attn1Modulation,
      tap: (kind, v) => tap(`attn1_${kind}`, v),
    });
    let h = g.add(a1, x);
    // Cross-attention (q from the latent, k/v from the text context).
    const n2 = ln(g, w, `${prefix}.norm2`, h);
    let a2 = inj.attn2_out ?? attentionGraph(g, w, `${prefix}.attn2`, n2, context, d.ch, d.heads, {
      tap: (kind, v) => kind !== "out" && tap(`attn2_${kind}`, v),
    });
    if (hooks.modulation) a2 = g.add(a2, hooks.modulation);
    tap("attn2_out", a2);
    h = g.add(a2, h);
    // GEGLU feed-forward.
    const n3 = ln(g, w, `${prefix}.norm3`, h);
    return g.add(feedForwardGraph(g, w, `${prefix}.ff`, n3), h);
  });

/**
 * The frame of a Transformer2DModel on NCHW x: GroupNorm(eps 1e-6) → proj_in (Linear on tokens, or 1×1 conv before
 * flattening) → `blocks` on tokens [B, N, C] → proj_out → + x. Tokens are row-major (token = row·w + col).
 */
export function tokenTransformerGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: Pick<TransformerDims, "ch" | "groups" | "linearProjection">,
  x: string,
  blocks: (tokens: string) => string,
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
    h = blocks(h);
    const toImage = (t: string) => g.reshapeTo(g.transpose(t, [0, 2, 1]), xShape);
    h = d.linearProjection
      ? toImage(lin(g, w, `${prefix}.proj_out`, h, true))
      : conv1x1(`${prefix}.proj_out`, toImage(h));
    return g.add(h, x);
  });
}

/** Transformer2DModel on NCHW x ({@link tokenTransformerGraph} around `depth` BasicTransformerBlocks). */
export const transformer2dGraph: Transformer2dBuilder = (g, w, prefix, d, x, context, hooks = {}) =>
  tokenTransformerGraph(g, w, prefix, d, x, (tokens) => {
    let h = tokens;
    for (let t = 0; t < d.depth; t++) {
      const block = `${prefix}.transformer_blocks.${t}`;
      h = basicTransformerBlockGraph(g, w, block, d, h, context, t === 0 ? hooks : {});
    }
    return h;
  });
