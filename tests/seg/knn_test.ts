import { assert, assertEquals } from "../assert.ts";
import { kNearest, knnPredict, majorityLabel } from "../../pipeline/seg/knn.ts";
import { createRng } from "../../pipeline/seg/rng.ts";

const mem = (pts: number[][], labels: number[]) => ({
  features: Float32Array.from(pts.flat()),
  labels: Int32Array.from(labels),
  n: pts.length,
  d: pts[0].length,
});

Deno.test("KNN k=4 separates two 2-D groups", () => {
  // left group around (0,0) labelled 3, right group around (10,0) labelled 8
  const m = mem([[0, 0], [0, 1], [1, 0], [1, 1], [10, 0], [10, 1], [11, 0], [11, 1]], [
    3,
    3,
    3,
    3,
    8,
    8,
    8,
    8,
  ]);
  const q = Float32Array.from([0.5, 0.5, 10.5, 0.2, 4, 0, 7, 0]);
  // (4,0): squared distances left 16, 17, 9, 10 vs right ≥ 36 → the 4 nearest are left → 3;
  // (7,0): right 9, 10, 16, 17 vs left ≥ 36 → 8
  assertEquals(Array.from(knnPredict(m, q, 4, 4)), [3, 8, 3, 8]);
});

Deno.test("KNN vote ties go to the smallest label", () => {
  // query at the origin; neighbours at distance 1, 2, 3, 4 labelled 9, 2, 9, 2 → 2 votes each → 2
  const m = mem([[1], [2], [3], [4], [50]], [9, 2, 9, 2, 0]);
  assertEquals(Array.from(knnPredict(m, Float32Array.from([0]), 1, 4)), [2]);
  // labels 7, 7, 1, 4 → 7 wins 2–1–1 even though 1 and 4 are smaller
  assertEquals(
    Array.from(knnPredict(mem([[1], [2], [3], [4]], [7, 7, 1, 4]), Float32Array.from([0]), 1, 4)),
    [7],
  );
  assertEquals(majorityLabel([5, 3, 5, 3]), 3);
  assertEquals(majorityLabel([255, 0, 255, 0]), 0);
});

Deno.test("KNN equal distances keep the lower memory index", () => {
  // memory points 0..3 all at distance 1 from the query; k = 2 keeps indices 0 and 1
  const m = mem([[1, 0], [0, 1], [-1, 0], [0, -1]], [1, 2, 3, 4]);
  const { index, dist } = kNearest(m, Float32Array.from([0, 0]), 1, 2);
  assertEquals(Array.from(index), [0, 1]);
  assertEquals(Array.from(dist), [1, 1]);
});

Deno.test("blocked KNN neighbours and distances equal a direct computation (random 37-D data, several tiles)", () => {
  const rng = createRng(1), n = 700, nq = 150, d = 37, k = 4;
  const M = Float32Array.from({ length: n * d }, () => rng.normal());
  const Q = Float32Array.from({ length: nq * d }, () => rng.normal());
  const { index, dist } = kNearest({ features: M, labels: new Int32Array(n), n, d }, Q, nq, k);
  for (let i = 0; i < nq; i++) {
    const all = Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += (Q[i * d + c] - M[j * d + c]) ** 2;
      return [s, j];
    }).sort((a, b) => a[0] - b[0]);
    for (let r = 0; r < k; r++) {
      assertEquals(index[i * k + r], all[r][1], `query ${i} rank ${r}`);
      // float32 dot products (SIMD kernel): |error| ≲ 1e−5 of the squared norms (≈ 2·37 here)
      assert(
        Math.abs(dist[i * k + r] - all[r][0]) < 1e-4,
        `distance ${dist[i * k + r]} vs ${all[r][0]}`,
      );
    }
  }
});
