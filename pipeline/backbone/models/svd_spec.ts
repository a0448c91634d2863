/**
 * The parameter set (diffusers key → shape) a UNetSpatioTemporalConditionModel of a given config must have:
 * validates weight files before building and generates random weights for benchmarks.
 * @module
 */
import type { ParamSpec } from "../weights/weight_map.ts";
import { resampleSpec, type SpecFn } from "./resnet.ts";
import { spatioTemporalResBlockSpec } from "./svd_blocks.ts";
import type { SvdLayout } from "./svd_config.ts";
import { type SpatioTemporalDims, transformerSpatioTemporalSpec } from "./svd_transformer.ts";

/** Transformer dims of a level with `ch` channels and `heads` heads. */
export function svdTransformerDims(l: SvdLayout, ch: number, heads: number): SpatioTemporalDims {
  return { ch, heads, crossDim: l.crossDim, depth: l.transformerDepth };
}

/** Expected parameters of the SVD UNet described by `l`, in build order. */
export function svdUnetSpec(l: SvdLayout): ParamSpec {
  const spec: ParamSpec = new Map();
  const add: SpecFn = (k, s) => spec.set(k, s);
  const C0 = l.blockOut[0], T = l.timeEmbedDim, last = l.blockOut[l.blockOut.length - 1];
  // eps does not shape parameters; the spec only needs channels.
  const rd = (inCh: number, outCh: number) => ({ inCh, outCh, tembCh: T, groups: l.groups, eps: 0 });
  const mlp = (prefix: string, inDim: number) => {
    add(`${prefix}.linear_1.weight`, [T, inDim]);
    add(`${prefix}.linear_1.bias`, [T]);
    add(`${prefix}.linear_2.weight`, [T, T]);
    add(`${prefix}.linear_2.bias`, [T]);
  };
  add("conv_in.weight", [C0, l.inChannels, 3, 3]);
  add("conv_in.bias", [C0]);
  mlp("time_embedding", C0);
  mlp("add_embedding", l.projectionInputDim);
  l.down.forEach((lvl, i) => {
    for (let k = 0; k < l.layersPerBlock; k++) {
      spatioTemporalResBlockSpec(
        add,
        `down_blocks.${i}.resnets.${k}`,
        rd(k === 0 ? lvl.inCh : lvl.outCh, lvl.outCh),
      );
      if (lvl.attention) {
        transformerSpatioTemporalSpec(
          add,
          `down_blocks.${i}.attentions.${k}`,
          svdTransformerDims(l, lvl.outCh, lvl.heads),
        );
      }
    }
    if (lvl.downsample) resampleSpec(add, `down_blocks.${i}.downsamplers.0`, lvl.outCh);
  });
  spatioTemporalResBlockSpec(add, "mid_block.resnets.0", rd(last, last));
  transformerSpatioTemporalSpec(add, "mid_block.attentions.0", svdTransformerDims(l, last, l.midHeads));
  spatioTemporalResBlockSpec(add, "mid_block.resnets.1", rd(last, last));
  l.up.forEach((lvl, j) => {
    lvl.resnetIn.forEach((inCh, k) => {
      spatioTemporalResBlockSpec(add, `up_blocks.${j}.resnets.${k}`, rd(inCh, lvl.outCh));
      if (lvl.attention) {
        transformerSpatioTemporalSpec(
          add,
          `up_blocks.${j}.attentions.${k}`,
          svdTransformerDims(l, lvl.outCh, lvl.heads),
        );
      }
    });
    if (lvl.upsample) resampleSpec(add, `up_blocks.${j}.upsamplers.0`, lvl.outCh);
  });
  add("conv_norm_out.weight", [C0]);
  add("conv_norm_out.bias", [C0]);
  add("conv_out.weight", [l.outChannels, C0, 3, 3]);
  add("conv_out.bias", [l.outChannels]);
  return spec;
}
