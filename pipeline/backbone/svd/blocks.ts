/**
 * Video layout helpers and diffusers `SpatioTemporalResBlock` for the SVD UNet and the temporal VAE decoder.
 *
 * Frames travel batch-major as diffusers lays them out: [B·F, C, H, W] with row b·F + f. The batch and frame
 * counts are runtime values (int64 [1] tensors taken from the graph input's shape), so one graph serves any B
 * and F. Temporal layers see [B, C, F, H, W] (Conv3d) or [B·N, F, C] tokens (temporal attention, row b·N + n).
 * @module
 */
import type { GraphBuilder } from "../onnx/builder.ts";
import type { WeightSource } from "../weights/weight_map.ts";
import {
  alphaBlendGraph,
  alphaBlendSpec,
  type ResnetDims,
  resnetGraph,
  resnetSpec,
  type SpecFn,
  temporalResnetGraph,
  temporalResnetSpec,
} from "../blocks/resnet.ts";

/** Runtime shape pieces of a video batch: B and F as int64 [1] values, plus per-width frame-index features. */
export interface VideoContext {
  /** B (videos) as int64 [1]. */
  batch: string;
  /** F (frames per video) as int64 [1]. */
  frames: string;
  /** diffusers `Timesteps(ch, flip_sin_to_cos=True, 0)` of the frame indices 0..F−1: [F, ch] (memoised). */
  frameFeatures(ch: number): string;
}

/** An int64 shape vector concatenated from constant parts (number lists) and runtime int64 values. */
export function dynShape(g: GraphBuilder, parts: readonly (readonly number[] | string)[]): string {
  return g.concat(parts.map((p) => (typeof p === "string" ? p : g.i64(p))), 0);
}

/** Dims start..end of x's runtime shape (int64). */
export function dimsOf(g: GraphBuilder, x: string, start: number, end?: number): string {
  return g.op("Shape", [x], end === undefined ? { start } : { start, end });
}

/** A {@link VideoContext} for a 5-D video input `x` [B, F, ...]. */
export function videoContext(g: GraphBuilder, x: string): VideoContext {
  const batch = dimsOf(g, x, 0, 1), frames = dimsOf(g, x, 1, 2);
  let index: string | undefined;
  const features = new Map<number, string>();
  return {
    batch,
    frames,
    frameFeatures(ch: number): string {
      let f = features.get(ch);
      if (!f) {
        if (!index) {
          const n = g.op("Squeeze", [frames, g.i64([0])]);
          index = g.cast(g.op("Range", [g.i64([0], []), n, g.i64([1], [])]), "F32");
        }
        const idx = index;
        f = g.scope(
          "frame_index",
          () => g.timestepEmbedding(idx, { dim: ch, flipSinToCos: true, freqShift: 0 }),
        );
        features.set(ch, f);
      }
      return f;
    },
  };
}

/** [B, F, ...rest] → [B·F, ...rest]. */
export function flattenFrames(g: GraphBuilder, x: string): string {
  return g.reshapeTo(x, dynShape(g, [[-1], dimsOf(g, x, 2)]));
}

/** [B·F, ...rest] → [B, F, ...rest]. */
export function unflattenFrames(g: GraphBuilder, v: VideoContext, x: string): string {
  return g.reshapeTo(x, dynShape(g, [v.batch, v.frames, dimsOf(g, x, 1)]));
}

/** Rows per video repeated F times (torch repeat_interleave(F, dim=0)): [B, ...rest] → [B·F, ...rest]. */
export function repeatPerFrame(g: GraphBuilder, v: VideoContext, x: string): string {
  const rest = dimsOf(g, x, 1);
  const tiled = g.op("Expand", [g.op("Unsqueeze", [x, g.i64([1])]), dynShape(g, [v.batch, v.frames, rest])]);
  return g.reshapeTo(tiled, dynShape(g, [[-1], rest]));
}

/** Frame tokens [B·F, N, C] → temporal tokens [B·N, F, C] (row b·N + n, sequence = frames). */
export function toTemporalTokens(g: GraphBuilder, v: VideoContext, x: string): string {
  const t = g.transpose(unflattenFrames(g, v, x), [0, 2, 1, 3]); // [B, N, F, C]
  return g.reshapeTo(t, dynShape(g, [[-1], v.frames, dimsOf(g, x, 2)]));
}

/** Temporal tokens [B·N, F, C] → frame tokens [B·F, N, C]. */
export function fromTemporalTokens(g: GraphBuilder, v: VideoContext, x: string): string {
  const t4 = g.reshapeTo(x, dynShape(g, [v.batch, [-1], v.frames, dimsOf(g, x, 2)])); // [B, N, F, C]
  const t = g.transpose(t4, [0, 2, 1, 3]); // [B, F, N, C]
  return g.reshapeTo(t, dynShape(g, [[-1], dimsOf(g, t, 2)]));
}

/** Frames [B·F, C, H, W] → video [B, C, F, H, W] (Conv3d layout). */
export function toVideo(g: GraphBuilder, v: VideoContext, x: string): string {
  return g.transpose(unflattenFrames(g, v, x), [0, 2, 1, 3, 4]);
}

/** Video [B, C, F, H, W] → frames [B·F, C, H, W]. */
export function fromVideo(g: GraphBuilder, x: string): string {
  return flattenFrames(g, g.transpose(x, [0, 2, 1, 3, 4]));
}

/** Dimensions of a SpatioTemporalResBlock. */
export interface SpatioTemporalResDims extends ResnetDims {
  /** GroupNorm eps of the temporal block (UNet: = eps; temporal VAE: 1e-5). */
  temporalEps: number;
  /** AlphaBlender switch_spatial_to_temporal_mix (temporal VAE: true). */
  switchMix: boolean;
}

/** Parameters of a SpatioTemporalResBlock: spatial_res_block, temporal_res_block (out → out), time_mixer. */
export function spatioTemporalResBlockSpec(add: SpecFn, prefix: string, d: ResnetDims): void {
  resnetSpec(add, `${prefix}.spatial_res_block`, d);
  temporalResnetSpec(add, `${prefix}.temporal_res_block`, { ...d, inCh: d.outCh });
  alphaBlendSpec(add, `${prefix}.time_mixer`);
}

/** The time embedding in both layouts a SpatioTemporalResBlock needs. */
export interface FrameEmbedding {
  /** [B·F, T] (per frame row). */
  frames: string;
  /** [B, F, T]. */
  video: string;
}

/**
 * SpatioTemporalResBlock on frames x [B·F, Cin, H, W]: xs = ResnetBlock2D(x, temb); xt = TemporalResnetBlock(xs
 * as [B, C, F, H, W], temb); out = AlphaBlender(xs, xt) back as [B·F, C, H, W]. `tap` sees
 * `spatial_res_block` (frames layout) and `temporal_res_block` ([B, C, F, H, W]).
 */
export function spatioTemporalResBlockGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  d: SpatioTemporalResDims,
  x: string,
  v: VideoContext,
  temb?: FrameEmbedding,
  tap?: (kind: "spatial_res_block" | "temporal_res_block", value: string) => void,
): string {
  return g.scope(prefix, () => {
    const xs = resnetGraph(g, w, `${prefix}.spatial_res_block`, d, x, temb?.frames);
    tap?.("spatial_res_block", xs);
    const xs5 = toVideo(g, v, xs);
    const xt5 = temporalResnetGraph(
      g,
      w,
      `${prefix}.temporal_res_block`,
      { ...d, inCh: d.outCh, eps: d.temporalEps },
      xs5,
      temb?.video,
    );
    tap?.("temporal_res_block", xt5);
    const { out } = alphaBlendGraph(g, w, `${prefix}.time_mixer`, xs5, xt5, d.switchMix);
    return fromVideo(g, out);
  });
}
