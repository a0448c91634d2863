import { assertAlmostEquals, assertEquals } from "../assert.ts";
import { gemmABt, gemmABtJs, l2NormalizeRows, rowSqNorms } from "../../pipeline/seg/matmul.ts";
import { wasmGemmAvailable } from "../../pipeline/seg/wasm_gemm.ts";
import { createRng } from "../../pipeline/seg/rng.ts";

Deno.test("gemmABt: a 2×3 by 3×3 hand example", () => {
  // A = [[1, 2, 3], [4, 5, 6]], B rows = [[1, 0, 0], [0, 1, 1], [2, 2, 2]]
  // A·Bᵀ = [[1, 5, 12], [4, 11, 30]]
  const C = new Float64Array(6);
  gemmABt(
    Float32Array.from([1, 2, 3, 4, 5, 6]),
    0,
    2,
    Float32Array.from([1, 0, 0, 0, 1, 1, 2, 2, 2]),
    0,
    3,
    3,
    C,
    3,
  );
  assertEquals(Array.from(C), [1, 5, 12, 4, 11, 30]);
});

for (
  const [kernel, gemm, tol] of [["SIMD (float32 sums)", gemmABt, 1e-5], [
    "JS (double sums)",
    gemmABtJs,
    1e-13,
  ]] as const
) {
  Deno.test(`gemmABt ${kernel}: row offsets, odd sizes, a wider output stride = direct dot products`, () => {
    const rng = createRng(3), d = 13, A = Float32Array.from({ length: 20 * d }, () => rng.normal());
    const B = Float32Array.from({ length: 150 * d }, () => rng.normal());
    // rows 3..9 of A (m = 7, not a multiple of 4) against rows 5..141 of B (n = 137, odd, > one 64-row block),
    // d = 13 (not a multiple of 4)
    const m = 7, n = 137, ldc = 140, C = new Float64Array(m * ldc).fill(-1);
    gemm(A, 3, m, B, 5, n, d, C, ldc);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0, abs = 0;
        for (let k = 0; k < d; k++) {
          const p = A[(3 + i) * d + k] * B[(5 + j) * d + k];
          s += p;
          abs += Math.abs(p);
        }
        assertAlmostEquals(C[i * ldc + j], s, tol * abs);
      }
      assertEquals(C[i * ldc + n], -1, "columns past n are untouched");
    }
  });
}

Deno.test("the SIMD kernel is available in this runtime", () => {
  assertEquals(wasmGemmAvailable(), true);
});

Deno.test("row norms and L2 normalisation (zero rows stay zero)", () => {
  const X = Float32Array.from([3, 4, 0, 0, 1, 0]);
  assertEquals(Array.from(rowSqNorms(X, 3, 2)), [25, 0, 1]);
  assertEquals(Array.from(l2NormalizeRows(X, 3, 2)), [Math.fround(0.6), Math.fround(0.8), 0, 0, 1, 0]);
});
