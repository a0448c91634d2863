/**
 * Feature aggregation (docs/method.md §4): the K-Means/KNN feature is the elementwise mean of the raw
 * self-attention queries of decoder blocks 6, 7, 8 (`features.aggregate: true`) or a single block
 * (`features.block`); CBR reads the raw query of `cbr.block`. The `features` stage stores every block's raw
 * query (`q<i>`), so rows that differ only in aggregation share the expensive diffusion pass and aggregate here.
 * @module
 */
import { type Artifacts, rowsOf, shapeOf } from "../dag/stage.ts";
import { meanOf } from "../tensor/ops.ts";
import { type Tensor, toF32 } from "../tensor/tensor.ts";

/** Rows [start, end) of the features (absent: all rows); lazily stored artifacts load only those rows. */
export interface RowRange {
  start: number;
  end: number;
}

function rows(a: Artifacts, name: string, r?: RowRange): Tensor<"F32"> {
  const info = shapeOf(a, name)!;
  return toF32(rowsOf(a, name, r?.start ?? 0, r?.end ?? info.shape[0]));
}

function block(a: Artifacts, i: number, r?: RowRange): Tensor<"F32"> {
  if (!shapeOf(a, `q${i}`)) {
    throw new Error(
      `features artifact has no tensor q${i} (decoder block ${i}); stored: ${
        Object.keys(a.tensors).join(", ")
      }`,
    );
  }
  return rows(a, `q${i}`, r);
}

/** The clustering feature [T, h·w, C] (or rows `r` of it): mean of `blocks` when `aggregate`, else block `single`. */
export function aggregatedFeatures(
  a: Artifacts,
  aggregate: boolean,
  blocks: readonly number[],
  single: number,
  r?: RowRange,
): Tensor<"F32"> {
  if (shapeOf(a, "features_agg")) return rows(a, "features_agg", r);
  return aggregate ? meanOf(blocks.map((i) => block(a, i, r))) : block(a, single, r);
}

/** The raw CBR feature [T, h·w, C] (or rows `r` of it) of decoder block `i`. */
export function cbrFeatures(a: Artifacts, i: number, r?: RowRange): Tensor<"F32"> {
  if (shapeOf(a, "features_cbr")) return rows(a, "features_cbr", r);
  return block(a, i, r);
}
