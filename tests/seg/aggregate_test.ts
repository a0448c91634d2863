import { assertEquals, assertThrows } from "../assert.ts";
import { aggregatedFeatures, cbrFeatures } from "../../pipeline/seg/aggregate.ts";
import { f32 } from "../../pipeline/tensor/tensor.ts";

const q = (v: number[]) => f32([1, 1, v.length], Float32Array.from(v));
const artifact = { tensors: { q6: q([1, 2]), q7: q([3, 6]), q8: q([5, 1]) }, json: {} };

Deno.test("aggregation: mean of the listed blocks, or one block; CBR reads its block raw", () => {
  // (q6 + q7 + q8)/3 = [(1+3+5)/3, (2+6+1)/3] = [3, 3]
  assertEquals(Array.from(aggregatedFeatures(artifact, true, [6, 7, 8], 7).data), [3, 3]);
  assertEquals(Array.from(aggregatedFeatures(artifact, false, [6, 7, 8], 8).data), [5, 1]);
  assertEquals(Array.from(cbrFeatures(artifact, 7).data), [3, 6]);
  // ready-made tensors take precedence
  const ready = {
    tensors: { ...artifact.tensors, features_agg: q([9, 9]), features_cbr: q([8, 8]) },
    json: {},
  };
  assertEquals(Array.from(aggregatedFeatures(ready, true, [6, 7, 8], 7).data), [9, 9]);
  assertEquals(Array.from(cbrFeatures(ready, 7).data), [8, 8]);
  assertThrows(
    () => cbrFeatures(artifact, 5),
    Error,
    "features artifact has no tensor q5 (decoder block 5); stored: q6, q7, q8",
  );
});
