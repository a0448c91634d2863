/**
 * diffusers `TransformerSpatioTemporalModel` (SVD's video transformer) and `TemporalBasicTransformerBlock`:
 * parameter specs and graph builders. The spatial block is the SD `BasicTransformerBlock` (attention.ts); the
 * temporal block reuses the same attention and GEGLU feed-forward builders on temporal tokens [B·N, F, C].
 *
 * Hooks (first block pair only) for the method: taps of every attention tensor in both blocks, the spatial and
 * temporal block outputs and the mixing α; injection of the temporal attn1 q/k; additive modulation of the
 * spatial and/or temporal attn1 output (docs/method.md §8.2–8.3, SVD).
 * @module
 */
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import {
  basicTransformerBlockGraph,
  basicTransformerBlockSpec,
  feedForwardGraph,
  feedForwardSpec,
  layerNormFrom,
  tokenTransformerGraph,
  transformer2dSpec,
  type TransformerBuilder,
  type TransformerDims,
} from "../blocks/attention.ts";
import { alphaBlendGraph, alphaBlendSpec, normSpec, type SpecFn } from "../blocks/resnet.ts";
import { dimsOf, dynShape, fromTemporalTokens, toTemporalTokens, type VideoContext } from "./blocks.ts";
import { timestepMlpGraph } from "../sd/graph.ts";
import { timestepMlpSpec } from "../sd/spec.ts";

/** Tap kinds of one video transformer (tensor layouts as in conformance-svd `unet_attention`). */
export const SVD_TRANSFORMER_TAPS = [
  "spatial.attn1_q",
  "spatial.attn1_k",
  "spatial.attn1_out",
  "spatial.attn2_q",
  "spatial.attn2_k",
  "spatial.attn2_out",
  "temporal.attn1_q",
  "temporal.attn1_k",
  "temporal.attn1_out",
  "temporal.attn2_q",
  "temporal.attn2_k",
  "temporal.attn2_out",
  "spatial_block_out",
  "temporal_block_out",
  "time_mixer_alpha",
] as const;

/** One of {@link SVD_TRANSFORMER_TAPS}. */
export type SvdTransformerTap = typeof SVD_TRANSFORMER_TAPS[number];

/** Hooks on the first (spatial, temporal) block pair of a TransformerSpatioTemporalModel. */
export interface SpatioTemporalHooks {
  /** Spatial tensors are [B·F, N, C]; temporal attention tensors [B·N, F, C]; α is [1]. */
  tap?: (kind: SvdTransformerTap, value: string) => void;
  /** Values used instead of the temporal attn1 to_q / to_k outputs ([B·N, F, C]). */
  injectTemporal?: { q?: string; k?: string };
  /** [B·F, N, 1] added to the spatial attn1 output (after to_out, before the residual). */
  modulationSpatial?: string;
  /** [B·N, F, 1] added to the temporal attn1 output (after to_out, before the residual). */
  modulationTemporal?: string;
}

/** Dimensions of a TransformerSpatioTemporalModel (inner dim = channels; head dim = ch / heads). */
export interface SpatioTemporalDims {
  ch: number;
  heads: number;
  crossDim: number;
  depth: number;
}

/** The SD Transformer2DModel frame of a TransformerSpatioTemporalModel (GroupNorm 32, Linear projections). */
function frameDims(d: SpatioTemporalDims): TransformerDims {
  return {
    ch: d.ch,
    heads: d.heads,
    crossDim: d.crossDim,
    groups: 32,
    depth: d.depth,
    linearProjection: true,
  };
}

/**
 * Parameters of a TemporalBasicTransformerBlock (dim = time_mix_inner_dim = C, cross-attention to crossDim):
 * norm_in + ff_in, then the parameters of a BasicTransformerBlock.
 */
export function temporalBlockSpec(add: SpecFn, prefix: string, C: number, crossDim: number): void {
  normSpec(add, `${prefix}.norm_in`, C);
  feedForwardSpec(add, `${prefix}.ff_in`, C);
  basicTransformerBlockSpec(add, prefix, C, crossDim);
}

/** Parameters of a TransformerSpatioTemporalModel: a Transformer2DModel plus temporal blocks, time_pos_embed, α. */
export function transformerSpatioTemporalSpec(add: SpecFn, prefix: string, d: SpatioTemporalDims): void {
  const C = d.ch;
  transformer2dSpec(add, prefix, frameDims(d), () => {
    for (let t = 0; t < d.depth; t++) {
      temporalBlockSpec(add, `${prefix}.temporal_transformer_blocks.${t}`, C, d.crossDim);
    }
    timestepMlpSpec(add, `${prefix}.time_pos_embed`, C, 4 * C, C);
    alphaBlendSpec(add, `${prefix}.time_mixer`);
  });
}

/**
 * TemporalBasicTransformerBlock on temporal tokens z [B·N, F, C] (its reshapes are done by the caller):
 * z += ff_in(norm_in(z)), then a BasicTransformerBlock (self-attention over the F frames of one token, cross-attention
 * to `context`, GEGLU feed-forward) with the temporal hooks.
 */
export const temporalBlockGraph: TransformerBuilder<SpatioTemporalDims, SpatioTemporalHooks> = (
  g,
  w,
  prefix,
  d,
  z,
  context,
  hooks = {},
) => {
  const tap = hooks.tap ?? (() => {});
  const h = g.scope(
    prefix,
    () => g.add(feedForwardGraph(g, w, `${prefix}.ff_in`, layerNormFrom(g, w, `${prefix}.norm_in`, z)), z),
  );
  return basicTransformerBlockGraph(g, w, prefix, d, h, context, {
    tap: (kind, v) => tap(`temporal.${kind}`, v),
    inject: { attn1_q: hooks.injectTemporal?.q, attn1_k: hooks.injectTemporal?.k },
    attn1Modulation: hooks.modulationTemporal,
  });
};

/**
 * TransformerSpatioTemporalModel on frames x [B·F, C, H, W]: the Transformer2DModel frame (GroupNorm(32, 1e-6) →
 * tokens [B·F, N, C] (n = r·W + c) → proj_in … proj_out → NCHW → + x) around block pairs: xs = spatial block
 * (cross-attention to `contextFrames` [B·F, S, D]); xt = temporal block of (xs + time_pos_embed(frame index)) with
 * context = each video's `context` [B, S, D] (frame 0 of the repeated one) for all its tokens;
 * mixed = α·xs + (1 − α)·xt.
 */
export function transformerSpatioTemporalGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: SpatioTemporalDims,
  x: string,
  contextFrames: string,
  context: string,
  v: VideoContext,
  hooks: SpatioTemporalHooks = {},
): string {
  const C = d.ch;
  return tokenTransformerGraph(g, w, prefix, frameDims(d), x, (tokens) => {
    let h = tokens;
    // Frame-index embedding [F, C], tiled to one row per frame of every video: [B·F, 1, C].
    const emb = timestepMlpGraph(g, w, `${prefix}.time_pos_embed`, v.frameFeatures(C));
    const embRows = g.reshape(
      g.op("Expand", [g.op("Unsqueeze", [emb, g.i64([0])]), dynShape(g, [v.batch, v.frames, [C]])]),
      [-1, 1, C],
    );
    // Temporal cross-attention context: each video's context for each of its N tokens, [B·N, S, D].
    const ctxRest = dimsOf(g, context, 1);
    const tokenDims = dimsOf(g, h, 1, 2);
    const timeContext = g.reshapeTo(
      g.op("Expand", [g.op("Unsqueeze", [context, g.i64([1])]), dynShape(g, [v.batch, tokenDims, ctxRest])]),
      dynShape(g, [[-1], ctxRest]),
    );
    for (let t = 0; t < d.depth; t++) {
      const hk = t === 0 ? hooks : {};
      const tap = hk.tap ?? (() => {});
      const xs = basicTransformerBlockGraph(g, w, `${prefix}.transformer_blocks.${t}`, d, h, contextFrames, {
        tap: (kind, val) => tap(`spatial.${kind}`, val),
        attn1Modulation: hk.modulationSpatial,
      });
      tap("spatial_block_out", xs);
      const z = toTemporalTokens(g, v, g.add(xs, embRows));
      const zt = temporalBlockGraph(
        g,
        w,
        `${prefix}.temporal_transformer_blocks.${t}`,
        d,
        z,
        timeContext,
        hk,
      );
      const xt = fromTemporalTokens(g, v, zt);
      tap("temporal_block_out", xt);
      const mixed = alphaBlendGraph(g, w, `${prefix}.time_mixer`, xs, xt);
      tap("time_mixer_alpha", mixed.alpha);
      h = mixed.out;
    }
    return h;
  });
}
