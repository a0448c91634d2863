/**
 * UNet2DConditionModel (SD 1.x/2.x) as an ONNX graph, with the build options the method needs:
 * taps (extra outputs) at named points, an additive `modulation` input on the attn2 output of one up-path
 * position, injection inputs replacing attn1 q/k and the attn2 output of chosen positions, and truncation
 * (only the taps are computed; everything after the deepest one is pruned).
 *
 * Names follow the conformance set: up-path position i = (L+1)·j + k for up_blocks[j].resnets[k]
 * (L = layers_per_block, so 3·j + k for SD); taps `up.posII.{resnet,out,attn1_q,attn1_k,attn2_q,attn2_k,
 * attn2_out}`, `up.blockJ.upsampler`, `debug.{time_proj,time_embedding,conv_in,down_blockI.out,mid_block.out}`.
 *
 * Prefix reuse (a split at the input of up-path position p): `exposePrefixAt: p` adds outputs `prefix.hidden`
 * (the hidden state entering position p, before its skip concat) and `prefix.skipK` (the skip connection
 * position p+K concatenates), and `resumeAt: p` builds the suffix: inputs `prefix.*` replace conv_in, the down
 * and mid blocks and positions < p. suffix(prefix(x)) = full(x): the suffix runs exactly the remaining ops.
 * @module
 */
import { fail } from "../../errors.ts";
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { transformer2dGraph, type TransformerHooks } from "../blocks/attention.ts";
import { convFrom, downsampleGraph, groupNormFrom, resnetGraph, upsampleGraph } from "../blocks/resnet.ts";
import type { UNetLayout } from "./config.ts";
import { transformerDims } from "./spec.ts";
import {
  type BodySplit,
  checkSplitOptions,
  PREFIX_HIDDEN,
  prefixSkip,
  prefixTensorDims,
} from "./split.ts";
import {
  attentionPositions,
  checkUNetOptions,
  injectInput,
  type TapEmitter,
  tapEmitter,
  tapName,
  unetTapNames,
} from "../blocks/taps.ts";

export { type BodySplit, PREFIX_HIDDEN, prefixNames, prefixSkip, prefixTensorDims } from "./split.ts";
export { attentionPositions, posLabel, tapName } from "../blocks/taps.ts";

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

/** Every tap name a layout offers (for validation and messages). */
export function availableTaps(l: UNetLayout): string[] {
  const kinds = ["attn1_q", "attn1_k", "attn2_q", "attn2_k", "attn2_out"] as const;
  return unetTapNames(
    l,
    ["debug.time_proj", "debug.time_embedding", "debug.conv_in"],
    (i, attn) => [tapName(i, "resnet"), tapName(i, "out"), ...(attn ? kinds.map((k) => tapName(i, k)) : [])],
  );
}

/** Check options against the layout; problems are one UserError line. */
export function checkBuildOptions(l: UNetLayout, o: UNetBuildOptions): void {
  checkUNetOptions(l, o, availableTaps(l), {
    tapsKey: "unet taps",
    tapExample: tapName(attentionPositions(l)[0] ?? 0, "attn1_q"),
    noModulation: "has no cross-attention",
    noInjection: "has no attention",
    validList: "positions with attention",
  }, (p) => {
    for (const k of ["attn2_q", "attn2_k"] as const) {
      if ((o.taps ?? []).includes(tapName(p, k))) {
        fail(
          "unet taps",
          `${tapName(p, k)} is not computed when position ${p} is injected (its attn2 output is an input)`,
        );
      }
    }
  });
  checkSplitOptions(l, o);
}

/** Where a resnet sits: its path, level (down/up: block index; mid: 0) and index k inside the block. */
export interface ResnetSite {
  path: "down" | "mid" | "up";
  level: number;
  index: number;
}

/**
 * The blocks a UNet variant is made of (SD: ResnetBlock2D + Transformer2DModel; SVD: SpatioTemporalResBlock +
 * TransformerSpatioTemporalModel). {@link unetBody} walks the diffusers down/mid/up layout with them.
 */
export interface UNetBlocks {
  /** A resnet at `site` taking `inCh` channels (hidden ‖ skip on the up path) to `outCh`. */
  resnet(prefix: string, site: ResnetSite, inCh: number, outCh: number, x: string): string;
  /** A transformer of `ch` channels; `position` = up-path position for up blocks, null on the down/mid path. */
  transformer(prefix: string, ch: number, heads: number, x: string, position: number | null): string;
}

/**
 * The down → mid → up walk of a diffusers UNet after conv_in (skip connections, downsamplers with padding 1,
 * nearest ×2 upsamplers), with the blocks supplied by `b`. Emits `debug.down_blockI.out`, `debug.mid_block.out`,
 * `up.posII.{resnet,out}` and `up.blockJ.upsampler` through `emit`; returns the last hidden state, or null as
 * soon as `done()` says a truncated variant has all its taps. With `split.resume`, `x` is ignored and the walk
 * starts at the split position.
 */
export function unetBody(
  g: GraphBuilder,
  w: WeightSource,
  l: UNetLayout,
  x: string,
  b: UNetBlocks,
  emit: (name: string, v: string) => void,
  done: () => boolean,
  split?: BodySplit,
): string | null {
  if (split?.resume) {
    return upWalk(g, w, l, split.resume.hidden, [...split.resume.skips].reverse(), b, emit, done, split);
  }
  let h = x;
  const skips = [h];
  l.down.forEach((lvl, i) => {
    g.scope(`down_blocks.${i}`, () => {
      for (let k = 0; k < l.layersPerBlock; k++) {
        const inCh = k === 0 ? lvl.inCh : lvl.outCh;
        h = b.resnet(
          `down_blocks.${i}.resnets.${k}`,
          { path: "down", level: i, index: k },
          inCh,
          lvl.outCh,
          h,
        );
        if (lvl.attention) {
          h = b.transformer(`down_blocks.${i}.attentions.${k}`, lvl.outCh, lvl.heads, h, null);
        }
        skips.push(h);
      }
      if (lvl.downsample) {
        h = downsampleGraph(g, w, `down_blocks.${i}.downsamplers.0`, h, l.downsamplePadding);
        skips.push(h);
      }
    });
    emit(`debug.down_block${i}.out`, h);
  });
  if (done()) return null;

  const last = l.blockOut[l.blockOut.length - 1];
  h = g.scope("mid_block", () => {
    let m = b.resnet("mid_block.resnets.0", { path: "mid", level: 0, index: 0 }, last, last, h);
    m = b.transformer("mid_block.attentions.0", last, l.midHeads, m, null);
    return b.resnet("mid_block.resnets.1", { path: "mid", level: 0, index: 1 }, last, last, m);
  });
  emit("debug.mid_block.out", h);
  if (done()) return null;
  return upWalk(g, w, l, h, skips, b, emit, done, split);
}

/** The up path from the mid-block output (or from a split position), popping skip connections from `skips`. */
function upWalk(
  g: GraphBuilder,
  w: WeightSource,
  l: UNetLayout,
  hidden: string,
  skips: string[],
  b: UNetBlocks,
  emit: (name: string, v: string) => void,
  done: () => boolean,
  split?: BodySplit,
): string | null {
  let h = hidden;
  const per = l.layersPerBlock + 1;
  const from = split?.resume ? split.at : 0;
  for (let j = 0; j < l.up.length; j++) {
    const lvl = l.up[j];
    for (let k = 0; k < per; k++) {
      const i = j * per + k;
      if (i < from) continue;
      if (split?.expose && i === split.at) split.expose(h, [...skips].reverse());
      g.scope(`up_blocks.${j}`, () => {
        h = g.concat([h, skips.pop()!], 1);
        h = b.resnet(
          `up_blocks.${j}.resnets.${k}`,
          { path: "up", level: j, index: k },
          lvl.resnetIn[k],
          lvl.outCh,
          h,
        );
        emit(tapName(i, "resnet"), h);
        if (lvl.attention) h = b.transformer(`up_blocks.${j}.attentions.${k}`, lvl.outCh, lvl.heads, h, i);
        emit(tapName(i, "out"), h);
      });
      if (done()) return null;
    }
    if (lvl.upsample && j * per + per - 1 >= from) {
      h = upsampleGraph(g, w, `up_blocks.${j}.upsamplers.0`, h);
      emit(`up.block${j}.upsampler`, h);
      if (done()) return null;
    }
  }
  return h;
}

/** diffusers TimestepEmbedding `${prefix}`: linear_2(silu(linear_1(x))). */
export function timestepMlpGraph(g: GraphBuilder, w: WeightSource, prefix: string, x: string): string {
  return g.scope(prefix, () => {
    const h = g.silu(
      g.linear(x, { weight: w.take(`${prefix}.linear_1.weight`), bias: w.take(`${prefix}.linear_1.bias`) }),
    );
    return g.linear(h, {
      weight: w.take(`${prefix}.linear_2.weight`),
      bias: w.take(`${prefix}.linear_2.bias`),
    });
  });
}

/**
 * The time embedding of a UNet: sinusoidal features of `timestep` (`dim` channels; emitted as `debug.time_proj`)
 * → time_embedding MLP (emitted as `debug.time_embedding`).
 */
export function timeEmbeddingGraph(
  g: GraphBuilder,
  w: WeightSource,
  timestep: string,
  p: { dim: number; flipSinToCos: boolean; freqShift: number },
  emit: TapEmitter["emit"],
): string {
  const tproj = g.scope("time_proj", () => g.timestepEmbedding(timestep, p));
  emit("debug.time_proj", tproj);
  const temb = timestepMlpGraph(g, w, "time_embedding", tproj);
  emit("debug.time_embedding", temb);
  return temb;
}

/**
 * Build the UNet into `g`. Inputs: `sample` [B, C_in, H, W] (or the `prefix.*` tensors with `resumeAt`),
 * `timestep` [B] (float32), `context` [B, S, D]; plus `modulation` and `inject.*` per options. Outputs: `eps`
 * (unless truncated), the taps, and the `prefix.*` tensors with `exposePrefixAt`.
 */
export function buildUNetGraph(
  g: GraphBuilder,
  w: WeightSource,
  l: UNetLayout,
  o: UNetBuildOptions = {},
): void {
  checkBuildOptions(l, o);
  const { emit, done } = tapEmitter(g, o);
  const temb0 = l.timeEmbedDim, C0 = l.blockOut[0];

  const resumeAt = o.resumeAt ?? null;
  const timestep = g.input("timestep", "F32", ["batch"]);
  const context = g.toCompute(g.input("context", "F32", ["batch", "seq", l.crossDim]));

  // Time embedding: sinusoidal features → linear_1 → silu → linear_2.
  const temb = timeEmbeddingGraph(g, w, timestep, {
    dim: C0,
    flipSinToCos: l.flipSinToCos,
    freqShift: l.freqShift,
  }, emit);

  let split: BodySplit | undefined;
  let h0 = "";
  if (resumeAt !== null) {
    const vals = prefixTensorDims(l, resumeAt).map((t) =>
      g.toCompute(g.input(t.name, "F32", ["batch", t.ch, `h${t.level}`, `w${t.level}`]))
    );
    split = { at: resumeAt, resume: { hidden: vals[0], skips: vals.slice(1) } };
  } else {
    let sample = g.toCompute(g.input("sample", "F32", ["batch", l.inChannels, "height", "width"]));
    if (l.centerInput) sample = g.sub(g.mul(sample, g.scalar(2)), g.scalar(1));
    h0 = convFrom(g, w, "conv_in", sample, (l.convInKernel - 1) / 2);
    emit("debug.conv_in", h0);
    const at = o.exposePrefixAt ?? null;
    if (at !== null) {
      split = {
        at,
        expose: (hidden, skips) => {
          g.output(PREFIX_HIDDEN, g.toF32(hidden));
          skips.forEach((s, k) => g.output(prefixSkip(k), g.toF32(s)));
        },
      };
    }
  }
  const injected = new Set(o.injectPositions ?? []);
  const per = l.layersPerBlock + 1;
  const blocks: UNetBlocks = {
    resnet: (prefix, site, inCh, outCh, x) =>
      resnetGraph(
        g,
        w,
        prefix,
        {
          inCh,
          outCh,
          tembCh: temb0,
          groups: l.groups,
          eps: l.normEps,
          outScale: site.path === "mid" ? l.midScale : 1,
        },
        x,
        temb,
      ),
    transformer: (prefix, ch, heads, x, i) =>
      transformer2dGraph(
        g,
        w,
        prefix,
        transformerDims(l, ch, heads),
        x,
        context,
        i === null ? {} : hooksFor(g, i, Math.floor(i / per), ch, o, injected, emit),
      ),
  };
  let h = unetBody(g, w, l, h0, blocks, emit, done, split);
  if (h === null) return;
  h = g.silu(groupNormFrom(g, w, "conv_norm_out", h, l.groups, l.normEps));
  h = convFrom(g, w, "conv_out", h, (l.convOutKernel - 1) / 2);
  if (!o.truncate) g.output("eps", g.toF32(h), "F32", ["batch", l.outChannels, "height", "width"]);
}

/** Taps, injection inputs and modulation input of position i (level j, C channels). */
function hooksFor(
  g: GraphBuilder,
  i: number,
  j: number,
  C: number,
  o: UNetBuildOptions,
  injected: Set<number>,
  emit: (name: string, v: string) => void,
): TransformerHooks {
  const tokens = `tokens${j}`;
  const hooks: TransformerHooks = { tap: (kind, v) => emit(tapName(i, kind), v) };
  if (injected.has(i)) {
    const inp = (kind: string) => injectInput(g, i, kind, ["batch", tokens, C]);
    hooks.inject = { attn1_q: inp("attn1_q"), attn1_k: inp("attn1_k"), attn2_out: inp("attn2_out") };
  }
  if (o.modulationPosition === i) {
    hooks.modulation = g.toCompute(g.input("modulation", "F32", ["batch", tokens, 1]));
  }
  return hooks;
}
