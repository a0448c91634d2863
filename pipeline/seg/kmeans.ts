/**
 * K-Means as scikit-learn 1.5 `KMeans(n_clusters=K, n_init=10)` runs it (docs/method.md §5): data centred on its
 * mean, greedy k-means++ init with 2 + ⌊ln K⌋ local trials, Lloyd iterations until the labels stop changing or
 * the squared centre shift ≤ tol · mean feature variance, empty clusters relocated to the farthest points, a
 * final E-step when stopping on tolerance, best of n_init runs by inertia (a run replaces the best only with a
 * strictly smaller inertia and a different partition). Deterministic given the seed (one xoshiro stream for all
 * runs, in place of numpy's global MT19937).
 *
 * Own implementation rather than npm `ml-kmeans` 7.0.1: ml-kmeans needs nested number[][] input, has no n_init,
 * no sklearn tolerance semantics, no empty-cluster relocation, and computes distances pair by pair. Measured
 * (`deno run -A pipeline/bench/seg.ts`, 1024×640 float32, K = 20, shared 2-CPU machine): one k-means++ run
 * 0.09–0.11 s here (SIMD products; 0.11–0.17 s with the JS kernel) vs 1.2–1.7 s for ml-kmeans at similar
 * iterations and inertia; all 10 inits 0.3–0.4 s. At the reference size (14·1024 points, 10 inits) a hard,
 * overlapping case took 111 s (231 Lloyd iterations in the best run).
 * @module
 */
import { gemmABt, rowSqNorms } from "./matmul.ts";
import { createRng, type Rng } from "./rng.ts";

/** K-Means settings (config `kmeans.*` + `seed`). */
export interface KMeansOptions {
  k: number;
  nInit?: number;
  maxIter?: number;
  tol?: number;
  seed?: number;
}

/** A fitted model. */
export interface KMeansModel {
  /** Centres [k × d] in the data's coordinates. */
  centers: Float32Array;
  k: number;
  d: number;
  /** Labels of the fitted points. */
  labels: Int32Array;
  inertia: number;
  /** Lloyd iterations of the chosen run. */
  nIter: number;
}

/** Fit on X [n × d]. */
export function kmeansFit(X: Float32Array, n: number, d: number, opts: KMeansOptions): KMeansModel {
  const { k, nInit = 10, maxIter = 300, tol = 1e-4, seed = 1 } = opts;
  if (X.length !== n * d) throw new Error(`kmeans: data has ${X.length} values, expected ${n}×${d}`);
  if (k < 1 || k > n) throw new Error(`kmeans: k = ${k} needs 1..${n} points`);
  // sklearn centres the data (precision) and measures tol against the mean per-feature variance
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += X[i * d + c];
  for (let c = 0; c < d; c++) mean[c] /= n;
  const Xc = new Float32Array(n * d);
  let varSum = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) {
      const v = X[i * d + c] - mean[c];
      Xc[i * d + c] = v;
      varSum += v * v;
    }
  }
  const tolAbs = (varSum / n / d) * tol;
  const xsq = rowSqNorms(Xc, n, d);
  const rng = createRng(seed);
  let best: { centers: Float32Array; labels: Int32Array; inertia: number; nIter: number } | null = null;
  for (let run = 0; run < nInit; run++) {
    const init = kmeansPlusPlus(Xc, xsq, n, d, k, rng);
    const res = lloyd(Xc, n, d, k, init, maxIter, tolAbs);
    if (best === null || (res.inertia < best.inertia && !sameClustering(res.labels, best.labels, k))) {
      best = res;
    }
  }
  const centers = best!.centers;
  for (let j = 0; j < k; j++) for (let c = 0; c < d; c++) centers[j * d + c] += mean[c];
  return { centers, k, d, labels: best!.labels, inertia: best!.inertia, nIter: best!.nIter };
}

/** Nearest centre of each row of X [n × d] (ties → the lower centre index), as sklearn `predict`. */
export function kmeansPredict(model: KMeansModel, X: Float32Array, n: number): Int32Array {
  return assign(X, n, model.d, model.centers, model.k, new Int32Array(n), null);
}

/** Greedy k-means++ (sklearn `_kmeans_plusplus`). */
function kmeansPlusPlus(
  X: Float32Array,
  xsq: Float64Array,
  n: number,
  d: number,
  k: number,
  rng: Rng,
): Float32Array {
  const centers = new Float32Array(k * d);
  const trials = 2 + Math.floor(Math.log(k));
  let first = rng.int(n);
  centers.set(X.subarray(first * d, first * d + d), 0);
  let closest = sqDistTo(X, xsq, n, d, [first])[0];
  let pot = sum(closest);
  const cum = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) cum[i] = acc += closest[i];
    const cand: number[] = [];
    for (let t = 0; t < trials; t++) cand.push(Math.min(searchsortedLeft(cum, rng.uniform() * pot), n - 1));
    const dists = sqDistTo(X, xsq, n, d, cand);
    let bestT = 0, bestPot = Infinity;
    for (let t = 0; t < trials; t++) {
      const dt = dists[t];
      for (let i = 0; i < n; i++) if (closest[i] < dt[i]) dt[i] = closest[i];
      const p = sum(dt);
      if (p < bestPot) (bestPot = p), (bestT = t);
    }
    pot = bestPot;
    closest = dists[bestT];
    first = cand[bestT];
    centers.set(X.subarray(first * d, first * d + d), c * d);
  }
  return centers;
}

/** Squared distances from the rows `ids` of X to every row of X (clamped at 0). */
function sqDistTo(X: Float32Array, xsq: Float64Array, n: number, d: number, ids: number[]): Float64Array[] {
  const A = new Float32Array(ids.length * d);
  ids.forEach((id, t) => A.set(X.subarray(id * d, id * d + d), t * d));
  const dots = new Float64Array(ids.length * n);
  gemmABt(A, 0, ids.length, X, 0, n, d, dots, n);
  return ids.map((id, t) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.max(0, xsq[id] + xsq[i] - 2 * dots[t * n + i]);
    return out;
  });
}

function searchsortedLeft(cum: Float64Array, v: number): number {
  let lo = 0, hi = cum.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

const CHUNK = 256;

/**
 * E-step: label of each point = argmin_j ‖c_j‖² − 2 x·c_j (sklearn `_update_chunk_dense`), ties → lower j.
 * With `dist` given, also stores each point's squared distance to its centre (relocation, inertia).
 */
function assign(
  X: Float32Array,
  n: number,
  d: number,
  centers: Float32Array,
  k: number,
  labels: Int32Array,
  xsq: Float64Array | null,
  dist?: Float64Array,
): Int32Array {
  const csq = rowSqNorms(centers, k, d);
  const dots = new Float64Array(CHUNK * k);
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const m = Math.min(CHUNK, n - i0);
    gemmABt(X, i0, m, centers, 0, k, d, dots, k);
    for (let i = 0; i < m; i++) {
      let bj = 0, bv = Infinity;
      for (let j = 0; j < k; j++) {
        const v = csq[j] - 2 * dots[i * k + j];
        if (v < bv) (bv = v), (bj = j);
      }
      labels[i0 + i] = bj;
      if (dist && xsq) dist[i0 + i] = Math.max(0, bv + xsq[i0 + i]);
    }
  }
  return labels;
}

/** One sklearn `_kmeans_single_lloyd` run from `init`. */
function lloyd(
  X: Float32Array,
  n: number,
  d: number,
  k: number,
  init: Float32Array,
  maxIter: number,
  tolAbs: number,
) {
  let centers = init.slice();
  const labels = new Int32Array(n), old = new Int32Array(n).fill(-1);
  const sums = new Float64Array(k * d), counts = new Float64Array(k);
  let strict = false, it = 0;
  for (; it < maxIter; it++) {
    assign(X, n, d, centers, k, labels, null);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const j = labels[i], o = j * d, xo = i * d;
      counts[j]++;
      for (let c = 0; c < d; c++) sums[o + c] += X[xo + c];
    }
    relocateEmpty(X, n, d, k, centers, labels, sums, counts);
    const next = new Float32Array(k * d);
    let shift = 0;
    for (let j = 0; j < k; j++) {
      for (let c = 0; c < d; c++) {
        const v = counts[j] > 0 ? sums[j * d + c] / counts[j] : sums[j * d + c];
        next[j * d + c] = v;
        const diff = next[j * d + c] - centers[j * d + c];
        shift += diff * diff;
      }
    }
    centers = next;
    let same = true;
    for (let i = 0; i < n; i++) if (labels[i] !== old[i]) (same = false), (i = n);
    if (same) {
      strict = true;
      it++;
      break;
    }
    if (shift <= tolAbs) {
      it++;
      break;
    }
    old.set(labels);
  }
  const xsq = rowSqNorms(X, n, d), dist = new Float64Array(n);
  if (!strict) assign(X, n, d, centers, k, labels, xsq, dist);
  // inertia from the final centres (sklearn `_inertia`), summed exactly rather than via ‖c‖² − 2x·c
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    const o = labels[i] * d, xo = i * d;
    for (let c = 0; c < d; c++) {
      const v = X[xo + c] - centers[o + c];
      inertia += v * v;
    }
  }
  return { centers, labels: labels.slice(), inertia, nIter: it };
}

/** sklearn `_relocate_empty_clusters_dense`: each empty cluster takes the next-farthest point from its centre. */
function relocateEmpty(
  X: Float32Array,
  n: number,
  d: number,
  k: number,
  centers: Float32Array,
  labels: Int32Array,
  sums: Float64Array,
  counts: Float64Array,
): void {
  const empty: number[] = [];
  for (let j = 0; j < k; j++) if (counts[j] === 0) empty.push(j);
  if (empty.length === 0) return;
  const far = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = labels[i] * d;
    for (let c = 0; c < d; c++) {
      const v = X[i * d + c] - centers[o + c];
      s += v * v;
    }
    far[i] = s;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => far[b] - far[a] || a - b);
  empty.forEach((j, t) => {
    const p = order[t], from = labels[p];
    for (let c = 0; c < d; c++) {
      sums[from * d + c] -= X[p * d + c];
      sums[j * d + c] = X[p * d + c];
    }
    counts[j] = 1;
    counts[from] -= 1;
  });
}

/** sklearn `_is_same_clustering`: the two labelings are equal up to a relabelling. */
function sameClustering(a: Int32Array, b: Int32Array, k: number): boolean {
  const map = new Int32Array(k).fill(-1);
  for (let i = 0; i < a.length; i++) {
    if (map[b[i]] === -1) map[b[i]] = a[i];
    else if (map[b[i]] !== a[i]) return false;
  }
  return true;
}
