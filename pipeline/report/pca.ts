/**
 * Principal component analysis for feature visualisation: the covariance of n feature vectors (rows of an
 * [n, C] matrix), its top eigenvectors by power iteration with Gram–Schmidt deflation, and the projection
 * of the rows onto them mapped to RGB. Fitting one basis over all shown frames (rather than per frame) keeps
 * the colours comparable across time, so temporally stable features look stable.
 * @module
 */

/** A fitted basis: the mean and the top-k unit eigenvectors of the covariance, largest first. */
export interface Pca {
  /** Feature dimension C. */
  dim: number;
  mean: Float64Array;
  /** k unit vectors of length C (sign fixed: the largest-magnitude entry is positive). */
  components: Float64Array[];
  /** Their eigenvalues (variances along each component), descending. */
  variances: number[];
  /** Total variance (trace of the covariance): variances[j] / total is the explained fraction. */
  total: number;
}

/** Mean [C] and covariance [C × C] (row-major, divided by n − 1; by 1 when n = 1) of the rows of x. */
export function covariance(
  x: ArrayLike<number>,
  n: number,
  C: number,
): { mean: Float64Array; cov: Float64Array } {
  if (x.length !== n * C) throw new Error(`covariance: ${x.length} values are not ${n} rows of ${C}`);
  const mean = new Float64Array(C);
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) mean[c] += x[i * C + c];
  for (let c = 0; c < C; c++) mean[c] /= n;
  const cov = new Float64Array(C * C);
  const d = new Float64Array(C); // one centred row, reused
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) d[c] = x[i * C + c] - mean[c];
    for (let a = 0; a < C; a++) {
      const da = d[a], off = a * C;
      for (let b = a; b < C; b++) cov[off + b] += da * d[b];
    }
  }
  const denom = Math.max(1, n - 1);
  for (let a = 0; a < C; a++) {
    for (let b = a; b < C; b++) {
      const v = cov[a * C + b] / denom;
      cov[a * C + b] = v;
      cov[b * C + a] = v;
    }
  }
  return { mean, cov };
}

/** Options of `topEigen`. */
export interface EigenOptions {
  /** Iteration cap per eigenvector. */
  maxIter?: number;
  /** Stop when the eigenvector moves less than this (L2). */
  tol?: number;
}

/**
 * The k largest eigenpairs of a symmetric positive semi-definite [C × C] matrix: power iteration for each
 * vector, orthogonalised against the ones already found (deflation). Deterministic start vectors.
 */
export function topEigen(sym: ArrayLike<number>, C: number, k: number, opts: EigenOptions = {}): {
  values: number[];
  vectors: Float64Array[];
} {
  if (sym.length !== C * C) throw new Error(`topEigen: ${sym.length} values are not a ${C}×${C} matrix`);
  const maxIter = opts.maxIter ?? 2000, tol = opts.tol ?? 1e-10;
  const values: number[] = [], vectors: Float64Array[] = [];
  const w = new Float64Array(C);
  for (let j = 0; j < Math.min(k, C); j++) {
    // A start vector with no special structure (so it is not orthogonal to the wanted eigenvector).
    let v: Float64Array = new Float64Array(C).map((_, i) => 1 + ((i * 7919 + j * 104729) % 1013) / 1013);
    orthogonalise(v, vectors);
    if (normalise(v) === 0) v = unitVectorOutside(vectors, C);
    let lambda = 0;
    for (let it = 0; it < maxIter; it++) {
      multiply(sym, C, v, w);
      orthogonalise(w, vectors);
      lambda = dot(v, w);
      if (normalise(w) === 0) break; // v lies in the null space: eigenvalue 0
      let delta = 0;
      for (let i = 0; i < C; i++) delta += (w[i] - v[i]) ** 2;
      v.set(w);
      if (Math.sqrt(delta) < tol) break;
    }
    fixSign(v);
    values.push(Math.max(0, lambda));
    vectors.push(v);
  }
  return { values, vectors };
}

/** Fit a k-component PCA to the rows of x [n, C]. */
export function fitPca(x: ArrayLike<number>, n: number, C: number, k = 3, opts: EigenOptions = {}): Pca {
  const { mean, cov } = covariance(x, n, C);
  const { values, vectors } = topEigen(cov, C, k, opts);
  let total = 0;
  for (let c = 0; c < C; c++) total += cov[c * C + c];
  return { dim: C, mean, components: vectors, variances: values, total };
}

/** Scores [n, k] of the rows of x on the fitted components (centred by the fitted mean). */
export function project(pca: Pca, x: ArrayLike<number>, n: number): Float32Array {
  const C = pca.dim, k = pca.components.length;
  if (x.length !== n * C) throw new Error(`project: ${x.length} values are not ${n} rows of ${C}`);
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const u = pca.components[j];
      let s = 0;
      for (let c = 0; c < C; c++) s += (x[i * C + c] - pca.mean[c]) * u[c];
      out[i * k + j] = s;
    }
  }
  return out;
}

/**
 * Scores [n, k] (k ≥ 1, the first 3 used) → RGB bytes [n, 3]: each component linearly stretched from its
 * `clip` and 1 − `clip` quantiles over all n rows to 0..255 (so one outlier does not wash out the image);
 * a missing component (k < 3) stays 0.
 */
export function scoresToRgb(scores: Float32Array, n: number, k: number, clip = 0.01): Uint8Array {
  const out = new Uint8Array(n * 3);
  const col = new Float32Array(n);
  for (let j = 0; j < Math.min(3, k); j++) {
    for (let i = 0; i < n; i++) col[i] = scores[i * k + j];
    const sorted = col.slice().sort();
    const lo = quantile(sorted, clip), hi = quantile(sorted, 1 - clip);
    const span = hi - lo;
    for (let i = 0; i < n; i++) {
      const t = span > 0 ? (col[i] - lo) / span : 0.5;
      out[i * 3 + j] = Math.round(255 * Math.min(1, Math.max(0, t)));
    }
  }
  return out;
}

/** Linear-interpolated quantile q ∈ [0, 1] of ascending values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(n - 1, Math.max(0, q * (n - 1)));
  const i = Math.floor(pos), f = pos - i;
  return i + 1 < n ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

function multiply(m: ArrayLike<number>, C: number, v: Float64Array, out: Float64Array): void {
  for (let a = 0; a < C; a++) {
    let s = 0;
    const off = a * C;
    for (let b = 0; b < C; b++) s += m[off + b] * v[b];
    out[a] = s;
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Scale to unit length in place; returns the former length (0 leaves v unchanged). */
function normalise(v: Float64Array): number {
  const len = Math.sqrt(dot(v, v));
  if (len > 1e-300) { for (let i = 0; i < v.length; i++) v[i] /= len; }
  return len > 1e-300 ? len : 0;
}

/** Remove the components along the (orthonormal) `basis` vectors, twice for numerical safety. */
function orthogonalise(v: Float64Array, basis: readonly Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    for (const u of basis) {
      const p = dot(v, u);
      for (let i = 0; i < v.length; i++) v[i] -= p * u[i];
    }
  }
}

/** A unit coordinate vector with a non-zero part outside span(basis). */
function unitVectorOutside(basis: readonly Float64Array[], C: number): Float64Array {
  for (let i = 0; i < C; i++) {
    const e = new Float64Array(C);
    e[i] = 1;
    orthogonalise(e, basis);
    if (normalise(e) > 1e-8) return e;
  }
  throw new Error("topEigen: more components requested than dimensions");
}

function fixSign(v: Float64Array): void {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
  if (v[best] < 0) { for (let i = 0; i < v.length; i++) v[i] = -v[i]; }
}
