/** PCA routines against hand-computed cases and matrices with a known eigendecomposition. */
import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import { covariance, fitPca, project, quantile, scoresToRgb, topEigen } from "../../pipeline/report/pca.ts";

/** Householder reflection I − 2uuᵀ/|u|² (orthogonal, symmetric): its columns are an orthonormal basis. */
function householder(u: number[]): number[][] {
  const n = u.length, uu = u.reduce((s, x) => s + x * x, 0);
  return Array.from(
    { length: n },
    (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0) - (2 * u[i] * u[j]) / uu),
  );
}

Deno.test("covariance: hand-computed 3 points in 2-D", () => {
  // mean (3, 4); deviations (−2, −2), (0, 2), (2, 0) → Σ/2 = [[4, 2], [2, 4]]
  const { mean, cov } = covariance([1, 2, 3, 6, 5, 4], 3, 2);
  assertEquals([...mean], [3, 4]);
  assertEquals([...cov], [4, 2, 2, 4]);
  // eigenvalues 6 along (1, 1)/√2 and 2 along (1, −1)/√2
  const { values, vectors } = topEigen(cov, 2, 2);
  assertAlmostEquals(values[0], 6, 1e-9);
  assertAlmostEquals(values[1], 2, 1e-9);
  assertAlmostEquals(vectors[0][0], Math.SQRT1_2, 1e-8);
  assertAlmostEquals(vectors[0][1], Math.SQRT1_2, 1e-8);
  assertAlmostEquals(Math.abs(vectors[1][0]), Math.SQRT1_2, 1e-8);
  assertAlmostEquals(vectors[1][0], -vectors[1][1], 1e-8);
});

Deno.test("topEigen: recovers Q diag(9, 4, 1, 0.25) Qᵀ", () => {
  const Q = householder([1, -2, 0.5, 3]);
  const lambda = [9, 4, 1, 0.25];
  const C = 4, A = new Float64Array(C * C);
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) for (let j = 0; j < C; j++) A[a * C + b] += Q[a][j] * lambda[j] * Q[b][j];
  }
  const { values, vectors } = topEigen(A, C, 3);
  for (let j = 0; j < 3; j++) {
    assertAlmostEquals(values[j], lambda[j], 1e-8);
    const cos = vectors[j].reduce((s, v, i) => s + v * Q[i][j], 0);
    assertAlmostEquals(Math.abs(cos), 1, 1e-8);
    const big = vectors[j].reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
    assert(big > 0, "sign convention: the largest entry is positive");
  }
});

Deno.test("topEigen: rank-deficient matrix yields zero eigenvalues with orthonormal vectors", () => {
  const { values, vectors } = topEigen(new Float64Array([1, 0, 0, 0, 0, 0, 0, 0, 0]), 3, 3);
  assertAlmostEquals(values[0], 1, 1e-12);
  assertEquals(values.slice(1), [0, 0]);
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      const d = vectors[a].reduce((s, v, i) => s + v * vectors[b][i], 0);
      assertAlmostEquals(d, a === b ? 1 : 0, 1e-9);
    }
  }
});

Deno.test("fitPca + project: points on a line in 3-D project onto its direction", () => {
  // x = c + t·d with d = (2, 1, −2)/3, t = −2..2: one component with variance var(t) = 2.5, the others 0
  const d = [2 / 3, 1 / 3, -2 / 3], c = [1, 5, -3];
  const ts = [-2, -1, 0, 1, 2];
  const x = ts.flatMap((t) => c.map((ci, i) => ci + t * d[i]));
  const pca = fitPca(x, ts.length, 3, 2);
  assertAlmostEquals(pca.variances[0], 2.5, 1e-9);
  assertAlmostEquals(pca.total, 2.5, 1e-9); // all variance lies along the line
  assertAlmostEquals(pca.variances[1], 0, 1e-9);
  const s = project(pca, x, ts.length);
  const sign = Math.sign(pca.components[0][0]); // d's first entry is positive, d[0] is the largest |entry|
  assertEquals(sign, 1);
  ts.forEach((t, i) => {
    assertAlmostEquals(s[i * 2], t, 1e-6);
    assertAlmostEquals(s[i * 2 + 1], 0, 1e-6);
  });
});

Deno.test("scoresToRgb: quantile stretch to 0..255, constant component mid-grey, missing channel 0", () => {
  // 5 rows, k = 2: component 0 = 0..4, component 1 constant
  const scores = new Float32Array([0, 7, 1, 7, 2, 7, 3, 7, 4, 7]);
  const rgb = scoresToRgb(scores, 5, 2, 0);
  assertEquals([...rgb].filter((_, i) => i % 3 === 0), [0, 64, 128, 191, 255]);
  assertEquals([...rgb].filter((_, i) => i % 3 === 1), [128, 128, 128, 128, 128]);
  assertEquals([...rgb].filter((_, i) => i % 3 === 2), [0, 0, 0, 0, 0]);
  // with 25 % clipping, the extremes saturate: quantiles 1 and 3
  const clipped = scoresToRgb(scores, 5, 2, 0.25);
  assertEquals([...clipped].filter((_, i) => i % 3 === 0), [0, 0, 128, 255, 255]);
  assertEquals(quantile([1, 2, 3, 4], 0.5), 2.5);
});
