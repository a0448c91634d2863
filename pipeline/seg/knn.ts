/**
 * The scene-context classifier (docs/method.md §6.1): sklearn `KNeighborsClassifier(n_neighbors=4)` with its
 * defaults — uniform weights, Euclidean distance, brute force. Squared distances come from blocked products,
 * ‖q‖² + ‖m‖² − 2 q·m, one [QB × MB] tile at a time, so the full query × memory matrix never exists; the k
 * nearest per query are kept in a small sorted list (equal distances: the lower memory index first). The vote
 * takes the most frequent label among the k; a tie goes to the smallest label (sklearn's `mode` over sorted
 * classes).
 * @module
 */
import { gemmABt, rowSqNorms } from "./matmul.ts";

/** Fitted memory: points [n × d] and their labels. */
export interface KnnMemory {
  features: Float32Array;
  labels: Int32Array;
  n: number;
  d: number;
}

/** Queries per tile. */
const QB = 64;
/** Memory points per tile. */
const MB = 512;

/**
 * Indices [nq × k] of the k nearest memory points of every query (ascending distance; ties → lower index)
 * and their squared distances. Requires k ≤ memory size.
 */
export function kNearest(
  mem: KnnMemory,
  queries: Float32Array,
  nq: number,
  k: number,
): { index: Int32Array; dist: Float64Array } {
  const { features: M, n, d } = mem;
  if (k < 1 || k > n) throw new Error(`knn: k = ${k} needs 1..${n} memory points`);
  if (queries.length !== nq * d) {
    throw new Error(`knn: queries have ${queries.length} values, expected ${nq}×${d}`);
  }
  const mNorm = rowSqNorms(M, n, d), qNorm = rowSqNorms(queries, nq, d);
  const index = new Int32Array(nq * k).fill(-1), dist = new Float64Array(nq * k).fill(Infinity);
  const tile = new Float64Array(QB * MB);
  for (let q0 = 0; q0 < nq; q0 += QB) {
    const qn = Math.min(QB, nq - q0);
    for (let m0 = 0; m0 < n; m0 += MB) {
      const mn = Math.min(MB, n - m0);
      gemmABt(queries, q0, qn, M, m0, mn, d, tile, MB);
      for (let i = 0; i < qn; i++) {
        const qi = q0 + i, base = qi * k, qq = qNorm[qi], t = i * MB;
        let worst = dist[base + k - 1];
        for (let j = 0; j < mn; j++) {
          let dd = qq + mNorm[m0 + j] - 2 * tile[t + j];
          if (dd < 0) dd = 0; // rounding can make a self-distance slightly negative
          if (dd < worst) {
            // insert after every entry with a distance ≤ dd (earlier index wins ties)
            let p = k - 1;
            while (p > 0 && dist[base + p - 1] > dd) {
              dist[base + p] = dist[base + p - 1];
              index[base + p] = index[base + p - 1];
              p--;
            }
            dist[base + p] = dd;
            index[base + p] = m0 + j;
            worst = dist[base + k - 1];
          }
        }
      }
    }
  }
  return { index, dist };
}

/** Majority label of `votes`; ties → the smallest label. */
export function majorityLabel(votes: ArrayLike<number>): number {
  let best = 0, bestCount = 0;
  for (let i = 0; i < votes.length; i++) {
    const v = votes[i];
    let c = 0;
    for (let j = 0; j < votes.length; j++) if (votes[j] === v) c++;
    if (c > bestCount || (c === bestCount && v < best)) (best = v), (bestCount = c);
  }
  return best;
}

/** Predicted label of each of the nq query rows [nq × d] by a k-neighbour uniform vote. */
export function knnPredict(mem: KnnMemory, queries: Float32Array, nq: number, k: number): Int32Array {
  const { index } = kNearest(mem, queries, nq, k);
  const out = new Int32Array(nq), votes = new Int32Array(k);
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < k; j++) votes[j] = mem.labels[index[i * k + j]];
    out[i] = majorityLabel(votes);
  }
  return out;
}
