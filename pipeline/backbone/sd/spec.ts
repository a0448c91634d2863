/**
 * The parameter set (diffusers key → shape) a UNet2DConditionModel of a given config must have. Used to
 * validate weight files before building, and to generate random weights for benchmarks.
 * @module
 */
import type { ParamSpec } from "../weights/weight_map.ts";
import { transformer2dSpec, type TransformerDims } from "../blocks/attention.ts";
import { resampleSpec, resnetSpec, type SpecFn } from "../blocks/resnet.ts";
import type { UNetLayout } from "./config.ts";

/** Transformer dims of a level with `ch` channels and `heads` heads. */
export function transformerDims(l: UNetLayout, ch: number, heads: number): TransformerDims {
  return {
    ch,
    heads,
    crossDim: l.crossDim,
    groups: l.groups,
    depth: l.transformerDepth,
    linearProjection: l.linearProjection,
  };
}

/** The blocks a UNet spec is made of (SD: ResnetBlock2D + Transformer2DModel; SVD: their spatio-temporal kin). */
export interface SpecBlocks {
  resnet(prefix: string, inCh: number, outCh: number): void;
  transformer(prefix: string, ch: number, heads: number): void;
}

/**
 * Parameters of the diffusers down → mid → up layout with the blocks of `b` (resamplers included), then
 * conv_norm_out and conv_out (kernel `outKernel`): everything after conv_in and the embeddings.
 */
export function unetBodySpec(add: SpecFn, l: UNetLayout, b: SpecBlocks, outKernel: number): void {
  const C0 = l.blockOut[0], last = l.blockOut[l.blockOut.length - 1];
  l.down.forEach((lvl, i) => {
    for (let k = 0; k < l.layersPerBlock; k++) {
      b.resnet(`down_blocks.${i}.resnets.${k}`, k === 0 ? lvl.inCh : lvl.outCh, lvl.outCh);
      if (lvl.attention) b.transformer(`down_blocks.${i}.attentions.${k}`, lvl.outCh, lvl.heads);
    }
    if (lvl.downsample) resampleSpec(add, `down_blocks.${i}.downsamplers.0`, lvl.outCh);
  });
  b.resnet("mid_block.resnets.0", last, last);
  b.transformer("mid_block.attentions.0", last, l.midHeads);
  b.resnet("mid_block.resnets.1", last, last);
  l.up.forEach((lvl, j) => {
    lvl.resnetIn.forEach((inCh, k) => {
      b.resnet(`up_blocks.${j}.resnets.${k}`, inCh, lvl.outCh);
      if (lvl.attention) b.transformer(`up_blocks.${j}.attentions.${k}`, lvl.outCh, lvl.heads);
    });
    if (lvl.upsample) resampleSpec(add, `up_blocks.${j}.upsamplers.0`, lvl.outCh);
  });
  add("conv_norm_out.weight", [C0]);
  add("conv_norm_out.bias", [C0]);
  add("conv_out.weight", [l.outChannels, C0, outKernel, outKernel]);
  add("conv_out.bias", [l.outChannels]);
}

/** Expected parameters of the UNet described by `l`, in build order. */
export function unetSpec(l: UNetLayout): ParamSpec {
  const spec: ParamSpec = new Map();
  const add: SpecFn = (k, s) => spec.set(k, s);
  const C0 = l.blockOut[0], T = l.timeEmbedDim;
  timestepMlpSpec(add, "time_embedding", C0, T);
  add("conv_in.weight", [C0, l.inChannels, l.convInKernel, l.convInKernel]);
  add("conv_in.bias", [C0]);
  unetBodySpec(add, l, {
    resnet: (prefix, inCh, outCh) =>
      resnetSpec(add, prefix, { inCh, outCh, tembCh: T, groups: l.groups, eps: l.normEps }),
    transformer: (prefix, ch, heads) => transformer2dSpec(add, prefix, transformerDims(l, ch, heads)),
  }, l.convOutKernel);
  return spec;
}

/** Parameters of a diffusers TimestepEmbedding: linear_1 [hidden, inDim], linear_2 [outDim, hidden]. */
export function timestepMlpSpec(
  add: SpecFn,
  prefix: string,
  inDim: number,
  hidden: number,
  outDim = hidden,
): void {
  add(`${prefix}.linear_1.weight`, [hidden, inDim]);
  add(`${prefix}.linear_1.bias`, [hidden]);
  add(`${prefix}.linear_2.weight`, [outDim, hidden]);
  add(`${prefix}.linear_2.bias`, [outDim]);
}

/** Total number of parameters of a spec. */
export function specParams(spec: ParamSpec): number {
  let n = 0;
  for (const s of spec.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
