/**
 * The parameter set (diffusers key → shape) a UNetSpatioTemporalConditionModel of a given config must have:
 * validates weight files before building and generates random weights for benchmarks.
 * @module
 */
import type { ParamSpec } from "../weights/weight_map.ts";
import type { SpecFn } from "../blocks/resnet.ts";
import { spatioTemporalResBlockSpec } from "./blocks.ts";
import type { SvdLayout } from "./config.ts";
import { type SpatioTemporalDims, transformerSpatioTemporalSpec } from "./transformer.ts";
import { timestepMlpSpec, unetBodySpec } from "../sd/spec.ts";

/** Transformer dims of a level with `ch` channels and `heads` heads. */
export function svdTransformerDims(l: SvdLayout, ch: number, heads: number): SpatioTemporalDims {
  return { ch, heads, crossDim: l.crossDim, depth: l.transformerDepth };
}

/** Expected parameters of the SVD UNet described by `l`, in build order. */
export function svdUnetSpec(l: SvdLayout): ParamSpec {
  const spec: ParamSpec = new Map();
  const add: SpecFn = (k, s) => spec.set(k, s);
  const C0 = l.blockOut[0], T = l.timeEmbedDim;
  add("conv_in.weight", [C0, l.inChannels, 3, 3]);
  add("conv_in.bias", [C0]);
  timestepMlpSpec(add, "time_embedding", C0, T);
  timestepMlpSpec(add, "add_embedding", l.projectionInputDim, T);
  unetBodySpec(add, l, {
    // eps does not shape parameters; the spec only needs channels.
    resnet: (prefix, inCh, outCh) =>
      spatioTemporalResBlockSpec(add, prefix, { inCh, outCh, tembCh: T, groups: l.groups, eps: 0 }),
    transformer: (prefix, ch, heads) =>
      transformerSpatioTemporalSpec(add, prefix, svdTransformerDims(l, ch, heads)),
  }, 3);
  return spec;
}
