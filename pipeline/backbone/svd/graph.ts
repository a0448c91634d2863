/**
 * UNetSpatioTemporalConditionModel (Stable Video Diffusion) as an ONNX graph, built on the SD UNet's down/mid/up
 * walk (`unetBody`) with SpatioTemporalResBlocks and TransformerSpatioTemporalModels, plus the method's build
 * options: taps, modulation of the spatial and/or temporal attn1 output at one up-path position, injection of the
 * temporal attn1 q/k at chosen positions, and truncation after the last tap.
 *
 * Graph IO (diffusers conventions): `sample` [B, F, C_in, H, W] (noisy latent·c_in ‖ conditioning latent),
 * `timestep` [B] (c_noise), `context` [B, S, D] (image embedding, S = 1), `added_time_ids` [B, n_ids]
 * → `v` [B, F, C_out, H, W]. Inside, frames are batch-major [B·F, …]; B and F are dynamic.
 * Optional inputs: `modulation` [B·F, h·w, 1] (spatial token layout; the temporal layout [B·h·w, F, 1] is derived
 * in the graph), `inject.posII.temporal.attn1_{q,k}` [B·h·w, F, C].
 *
 * Tap names: `debug.{time_proj,time_embedding,add_time_proj,add_embedding,conv_in,down_blockI.out,mid_block.out}`,
 * `debug.up.posII.{spatial_res_block,temporal_res_block}`, `up.posII.{resnet,out}`, `up.blockJ.upsampler`, and at
 * positions with a transformer `up.posII.<kind>` for every kind of {@link SVD_TRANSFORMER_TAPS}
 * (e.g. `up.pos07.spatial.attn1_q`, the block feature; `up.pos08.temporal.attn1_k`).
 * @module
 */
import { fail } from "../../errors.ts";
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import { convFrom, groupNormFrom } from "../blocks/resnet.ts";
import {
  flattenFrames,
  repeatPerFrame,
  spatioTemporalResBlockGraph,
  toTemporalTokens,
  unflattenFrames,
  type VideoContext,
  videoContext,
} from "./blocks.ts";
import { SVD_NORM_OUT_EPS, type SvdLayout, svdResnetEps } from "./config.ts";
import { svdTransformerDims } from "./spec.ts";
import {
  type SpatioTemporalHooks,
  SVD_TRANSFORMER_TAPS,
  transformerSpatioTemporalGraph,
} from "./transformer.ts";
import { timeEmbeddingGraph, timestepMlpGraph, type UNetBlocks, unetBody } from "../sd/graph.ts";
import {
  attentionPositions,
  checkUNetOptions,
  injectInput,
  posLabel,
  tapEmitter,
  tapName,
  unetTapNames,
} from "../blocks/taps.ts";

/** Where the position-`modulationPosition` modulation is added (docs/method.md §8.2 SVD: both). */
export type SvdModulationTarget = "spatial" | "temporal";

/** Build options of an SVD UNet graph variant. */
export interface SvdBuildOptions {
  /** Tap names to expose as outputs (see module doc). */
  taps?: readonly string[];
  /** Up-path position whose attn1 output(s) receive the `modulation` input (SVD method: 8). */
  modulationPosition?: number | null;
  /** Which attn1 outputs of that position are modulated (default both). */
  modulationTargets?: readonly SvdModulationTarget[];
  /** Up-path positions whose temporal attn1 q/k are graph inputs (SVD method: 3..11). */
  injectPositions?: readonly number[];
  /** Output only the taps, pruning everything after the deepest one (no `v` output). */
  truncate?: boolean;
}

/** Every tap name an SVD layout offers. */
export function svdAvailableTaps(l: SvdLayout): string[] {
  const head = ["time_proj", "time_embedding", "add_time_proj", "add_embedding", "conv_in"].map((t) =>
    `debug.${t}`
  );
  return unetTapNames(l, head, (i, attn) => [
    `debug.${posLabel(i)}.spatial_res_block`,
    `debug.${posLabel(i)}.temporal_res_block`,
    tapName(i, "resnet"),
    tapName(i, "out"),
    ...(attn ? SVD_TRANSFORMER_TAPS.map((kind) => `${posLabel(i)}.${kind}`) : []),
  ]);
}

/** Check options against the layout; problems are one UserError line. */
export function checkSvdBuildOptions(l: SvdLayout, o: SvdBuildOptions): void {
  const targets = o.modulationTargets ?? ["spatial", "temporal"];
  if (!targets.length || targets.some((t) => t !== "spatial" && t !== "temporal")) {
    fail(
      "svd modulation targets",
      `expected a non-empty subset of spatial, temporal, got ${JSON.stringify(targets)}`,
    );
  }
  checkUNetOptions(l, o, svdAvailableTaps(l), {
    tapsKey: "svd unet taps",
    tapExample: `${posLabel(attentionPositions(l)[0] ?? 0)}.spatial.attn1_q`,
    noModulation: "has no transformer",
    noInjection: "has no transformer",
    validList: "positions with one",
  });
}

/** Build the SVD UNet into `g` (inputs and outputs: see module doc). */
export function buildSvdUNetGraph(
  g: GraphBuilder,
  w: WeightSource,
  l: SvdLayout,
  o: SvdBuildOptions = {},
): void {
  checkSvdBuildOptions(l, o);
  const { emit, done } = tapEmitter(g, o);
  const C0 = l.blockOut[0], T = l.timeEmbedDim;

  const sample5 = g.toCompute(g.input("sample", "F32", ["batch", "frames", l.inChannels, "height", "width"]));
  const timestep = g.input("timestep", "F32", ["batch"]);
  const context = g.toCompute(g.input("context", "F32", ["batch", "seq", l.crossDim]));
  const ids = g.input("added_time_ids", "F32", ["batch", l.numAddedIds]);
  const video = videoContext(g, sample5);

  // emb = time_embedding(time_proj(t)) + add_embedding(add_time_proj(ids) as [B, n_ids·dim]), one row per frame.
  const temb = timeEmbeddingGraph(g, w, timestep, { dim: C0, flipSinToCos: true, freqShift: 0 }, emit);
  const aproj = g.scope(
    "add_time_proj",
    () =>
      g.timestepEmbedding(g.reshape(ids, [-1]), { dim: l.addTimeEmbedDim, flipSinToCos: true, freqShift: 0 }),
  );
  emit("debug.add_time_proj", aproj);
  const aemb = timestepMlpGraph(g, w, "add_embedding", g.reshape(aproj, [-1, l.projectionInputDim]));
  emit("debug.add_embedding", aemb);
  const embFrames = repeatPerFrame(g, video, g.add(temb, aemb)); // [B·F, T]
  const emb = { frames: embFrames, video: unflattenFrames(g, video, embFrames) }; // and [B, F, T]
  const contextFrames = repeatPerFrame(g, video, context); // [B·F, S, D]

  const h0 = convFrom(g, w, "conv_in", flattenFrames(g, sample5), 1);
  emit("debug.conv_in", h0);
  const per = l.layersPerBlock + 1;
  const hooks = positionHooks(g, l, o, video, emit);
  const blocks: UNetBlocks = {
    resnet: (prefix, site, inCh, outCh, x) => {
      const eps = svdResnetEps(l, site);
      const i = site.path === "up" ? site.level * per + site.index : null;
      return spatioTemporalResBlockGraph(
        g,
        w,
        prefix,
        { inCh, outCh, tembCh: T, groups: l.groups, eps, temporalEps: eps, switchMix: false },
        x,
        video,
        emb,
        i === null ? undefined : (kind, v) => emit(`debug.${posLabel(i)}.${kind}`, v),
      );
    },
    transformer: (prefix, ch, heads, x, i) =>
      transformerSpatioTemporalGraph(
        g,
        w,
        prefix,
        svdTransformerDims(l, ch, heads),
        x,
        contextFrames,
        context,
        video,
        i === null ? {} : hooks(i, ch),
      ),
  };
  let h = unetBody(g, w, l, h0, blocks, emit, done);
  if (h === null) return;
  h = g.silu(groupNormFrom(g, w, "conv_norm_out", h, l.groups, SVD_NORM_OUT_EPS));
  h = convFrom(g, w, "conv_out", h, 1);
  if (!o.truncate) {
    g.output("v", g.toF32(unflattenFrames(g, video, h)), "F32", [
      "batch",
      "frames",
      l.outChannels,
      "height",
      "width",
    ]);
  }
}

/** Taps, temporal q/k injection inputs and the modulation input(s) of up-path position i (C channels). */
function positionHooks(
  g: GraphBuilder,
  l: SvdLayout,
  o: SvdBuildOptions,
  video: VideoContext,
  emit: (name: string, v: string) => void,
): (i: number, C: number) => SpatioTemporalHooks {
  const injected = new Set(o.injectPositions ?? []);
  const targets = new Set(o.modulationTargets ?? ["spatial", "temporal"]);
  const per = l.layersPerBlock + 1;
  return (i, C) => {
    const j = Math.floor(i / per);
    const hooks: SpatioTemporalHooks = { tap: (kind, v) => emit(`${posLabel(i)}.${kind}`, v) };
    if (injected.has(i)) {
      const inp = (kind: string) => injectInput(g, i, `temporal.${kind}`, [`batch_tokens${j}`, "frames", C]);
      hooks.injectTemporal = { q: inp("attn1_q"), k: inp("attn1_k") };
    }
    if (o.modulationPosition === i) {
      const m = g.toCompute(g.input("modulation", "F32", ["batch_frames", `tokens${j}`, 1]));
      if (targets.has("spatial")) hooks.modulationSpatial = m;
      if (targets.has("temporal")) hooks.modulationTemporal = toTemporalTokens(g, video, m);
    }
    return hooks;
  };
}
