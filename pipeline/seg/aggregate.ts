/**
 * Feature aggregation (ALGORITHM.md §4): the K-Means/KNN feature is the elementwise mean of the raw
 * self-attention queries of decoder blocks 6, 7, 8 (`features.aggregate: true`) or a single block
 * (`features.block`); CBR reads the raw query of `cbr.block`. The `features` stage stores every block's raw
 * query (`q<i>`), so rows that differ only in aggregation share the expensive diffusion pass and aggregate here.
 * @module
 */
import type { Artifacts } from "../dag/stage.ts";
import { meanOf } from "../tensor/ops.ts";
import { type Tensor, toF32 } from "../tensor/tensor.ts";

function block(a: Artifacts, i: number): Tensor<"F32"> {
  const t = a.tensors[`q${i}`];
  if (!t) {
    throw new Error(
      `features artifact has no tensor q${i} (decoder block ${i}); stored: ${
        Object.keys(a.tensors).join(", ")
      }`,
    );
  }
  return toF32(t);
}

/** The clustering feature [T, h·w, C]: mean of `blocks` when `aggregate`, else block `single`. */
export function aggregatedFeatures(
  a: Artifacts,
  aggregate: boolean,
  blocks: readonly number[],
  single: number,
): Tensor<"F32"> {
  if (a.tensors.features_agg) return toF32(a.tensors.features_agg);
  return aggregate ? meanOf(blocks.map((i) => block(a, i))) : block(a, single);
}

/** The raw CBR feature [T, h·w, C] of decoder block `i`. */
export function cbrFeatures(a: Artifacts, i: number): Tensor<"F32"> {
  if (a.tensors.features_cbr) return toF32(a.tensors.features_cbr);
  return block(a, i);
}
