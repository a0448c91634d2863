/**
 * Blocked dense products over Float32Array row matrices, the only inner loops of K-Means, KNN and CBR.
 * `A` rows [m × d] and `B` rows [n × d] are both row-major (features are stored one point per row), so the
 * product wanted is A·Bᵀ. `gemmABt` uses the WebAssembly SIMD kernel of `wasm_gemm.ts` (float32 sums, ≈ 2.5×
 * faster) and falls back to `gemmABtJs` where SIMD is unavailable or VIDSEG_GEMM=js. The JS kernel is a 4×2
 * register tile that walks the shared dimension once for eight dot products (eight accumulators and six loads fit
 * x86-64's sixteen vector registers; measured fastest of 4×4, 4×2, a k-blocked 4×4 and a packed axpy form on
 * 1024×1024×640: ≈ 3.7 GFLOP/s in V8 on one core), column blocks of B (`NB` rows) staying in cache; its sums
 * are double.
 * @module
 */

import { type GemmABt, wasmGemmABt } from "./wasm_gemm.ts";

/** Rows of B per column block (≈ 160 KB of float32 at d = 640). */
const NB = 64;

/** Whether to use the WebAssembly kernel (env VIDSEG_GEMM=js forces the JS kernel). */
const useWasm = (() => {
  try {
    return Deno.env.get("VIDSEG_GEMM") !== "js";
  } catch {
    return true; // no env permission
  }
})();

/**
 * C[i·ldc + j] = Σ_k A[(a0+i)·d + k] · B[(b0+j)·d + k] for i < m, j < n (C is written, not accumulated).
 * `a0`, `b0` are row offsets into A and B.
 */
export const gemmABt: GemmABt<void> = (A, a0, m, B, b0, n, d, C, ldc) => {
  if (useWasm && m * n >= 64 && wasmGemmABt(A, a0, m, B, b0, n, d, C, ldc)) return;
  gemmABtJs(A, a0, m, B, b0, n, d, C, ldc);
};

/** The scalar JS kernel of `gemmABt` (double sums; no copies: `a0`, `b0` index the inputs directly). */
export const gemmABtJs: GemmABt<void> = (A, a0, m, B, b0, n, d, C, ldc) => {
  for (let jb = 0; jb < n; jb += NB) {
    const je = Math.min(n, jb + NB);
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      const p0 = (a0 + i) * d, p1 = p0 + d, p2 = p1 + d, p3 = p2 + d;
      const c0 = i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
      let j = jb;
      for (; j + 2 <= je; j += 2) {
        const q0 = (b0 + j) * d, q1 = q0 + d;
        let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
        for (let k = 0; k < d; k++) {
          const x0 = B[q0 + k], x1 = B[q1 + k];
          const y0 = A[p0 + k], y1 = A[p1 + k], y2 = A[p2 + k], y3 = A[p3 + k];
          s00 += y0 * x0;
          s01 += y0 * x1;
          s10 += y1 * x0;
          s11 += y1 * x1;
          s20 += y2 * x0;
          s21 += y2 * x1;
          s30 += y3 * x0;
          s31 += y3 * x1;
        }
        C[c0 + j] = s00;
        C[c0 + j + 1] = s01;
        C[c1 + j] = s10;
        C[c1 + j + 1] = s11;
        C[c2 + j] = s20;
        C[c2 + j + 1] = s21;
        C[c3 + j] = s30;
        C[c3 + j + 1] = s31;
      }
      for (; j < je; j++) {
        const q0 = (b0 + j) * d;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = 0; k < d; k++) {
          const x = B[q0 + k];
          s0 += A[p0 + k] * x;
          s1 += A[p1 + k] * x;
          s2 += A[p2 + k] * x;
          s3 += A[p3 + k] * x;
        }
        C[c0 + j] = s0;
        C[c1 + j] = s1;
        C[c2 + j] = s2;
        C[c3 + j] = s3;
      }
    }
    for (; i < m; i++) {
      const p0 = (a0 + i) * d, c0 = i * ldc;
      for (let j = jb; j < je; j++) {
        const q0 = (b0 + j) * d;
        let s = 0;
        for (let k = 0; k < d; k++) s += A[p0 + k] * B[q0 + k];
        C[c0 + j] = s;
      }
    }
  }
};

/** Squared L2 norm of each of the n rows of X [n × d] (double). */
export function rowSqNorms(X: Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let k = 0; k < d; k++) s += X[o + k] * X[o + k];
    out[i] = s;
  }
  return out;
}

/**
 * Rows scaled to unit L2 norm (torch `x / x.norm()`; a zero row stays zero instead of NaN), as float32.
 */
export function l2NormalizeRows(X: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let s = 0;
    for (let k = 0; k < d; k++) s += X[o + k] * X[o + k];
    if (s === 0) continue;
    const norm = Math.sqrt(s);
    for (let k = 0; k < d; k++) out[o + k] = X[o + k] / norm;
  }
  return out;
}
