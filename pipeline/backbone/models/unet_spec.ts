/**
 * The parameter set (diffusers key → shape) a UNet2DConditionModel of a given config must have. Used to
 * validate weight files before building, and to generate random weights for benchmarks.
 * @module
 */
import type { ParamSpec } from "../weights/weight_map.ts";
import { transformer2dSpec, type TransformerDims } from "./attention.ts";
import { resampleSpec, resnetSpec, type SpecFn } from "./resnet.ts";
import type { UNetLayout } from "./unet_config.ts";

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

/** Expected parameters of the UNet described by `l`, in build order. */
export function unetSpec(l: UNetLayout): ParamSpec {
  const spec: ParamSpec = new Map();
  const add: SpecFn = (k, s) => spec.set(k, s);
  const C0 = l.blockOut[0], T = l.timeEmbedDim, last = l.blockOut[l.blockOut.length - 1];
  const rd = (inCh: number, outCh: number) => ({ inCh, outCh, tembCh: T, groups: l.groups, eps: l.normEps });
  add("time_embedding.linear_1.weight", [T, C0]);
  add("time_embedding.linear_1.bias", [T]);
  add("time_embedding.linear_2.weight", [T, T]);
  add("time_embedding.linear_2.bias", [T]);
  add("conv_in.weight", [C0, l.inChannels, l.convInKernel, l.convInKernel]);
  add("conv_in.bias", [C0]);
  l.down.forEach((lvl, i) => {
    for (let k = 0; k < l.layersPerBlock; k++) {
      resnetSpec(add, `down_blocks.${i}.resnets.${k}`, rd(k === 0 ? lvl.inCh : lvl.outCh, lvl.outCh));
      if (lvl.attention) {
        transformer2dSpec(add, `down_blocks.${i}.attentions.${k}`, transformerDims(l, lvl.outCh, lvl.heads));
      }
    }
    if (lvl.downsample) resampleSpec(add, `down_blocks.${i}.downsamplers.0`, lvl.outCh);
  });
  resnetSpec(add, "mid_block.resnets.0", rd(last, last));
  transformer2dSpec(add, "mid_block.attentions.0", transformerDims(l, last, l.midHeads));
  resnetSpec(add, "mid_block.resnets.1", rd(last, last));
  l.up.forEach((lvl, j) => {
    lvl.resnetIn.forEach((inCh, k) => {
      resnetSpec(add, `up_blocks.${j}.resnets.${k}`, rd(inCh, lvl.outCh));
      if (lvl.attention) {
        transformer2dSpec(add, `up_blocks.${j}.attentions.${k}`, transformerDims(l, lvl.outCh, lvl.heads));
      }
    });
    if (lvl.upsample) resampleSpec(add, `up_blocks.${j}.upsamplers.0`, lvl.outCh);
  });
  add("conv_norm_out.weight", [C0]);
  add("conv_norm_out.bias", [C0]);
  add("conv_out.weight", [l.outChannels, C0, l.convOutKernel, l.convOutKernel]);
  add("conv_out.bias", [l.outChannels]);
  return spec;
}

/** Total number of parameters of a spec. */
export function specParams(spec: ParamSpec): number {
  let n = 0;
  for (const s of spec.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
