/**
 * Correspondence-based refinement (docs/method.md §7, `correct_low_res_mask` / `dense_tracking` /
 * `dense_feature_matching_iterative` with use_aux, top_k = 1, spatial_filter, anchor "common").
 *
 * 1. One trajectory per frame-0 grid cell (row-major; the exact integer grid — the reference's float32 h/H·H
 *    round trip shifts a few start rows, docs/method.md §13.19). From frame q to q+1 the next position maximises
 *    (q/(q+1))·cos(s, f_{q+1}(p)) + (1/(q+1))·cos(s, f_0(p)) over the whole grid, s = feature of frame q at the
 *    current position (first maximum on ties). Because cosine is linear in the unit-normalised target, the two
 *    maps are one product against the combined target q/(q+1)·f̂_{q+1} + 1/(q+1)·f̂_0 (same value up to float
 *    rounding). All trajectories at the same cell share one query, so each step evaluates only the distinct cells
 *    the trajectories occupy. At q = 0 the weight of frame 1 is 0, so p_1 = p_0 (the reference quirk).
 * 2. A trajectory is dropped entirely if some step moves more than `spatialThreshold` cells down or right
 *    (signed test of the code; `absThreshold` tests |Δ| in both directions).
 * 3. Each kept trajectory takes the most common unrefined label along it (`Counter.most_common`: ties → the label
 *    seen first in frame order) and writes it at all its positions; later trajectories (raster order) overwrite
 *    earlier ones, cells on no kept trajectory keep their label.
 * @module
 */
import { gemmABt, l2NormalizeRows } from "./matmul.ts";

/** CBR options (config `cbr.*`). */
export interface CbrOptions {
  /** Largest accepted jump in grid cells (code: 1). */
  spatialThreshold: number;
  /** Test |Δh|, |Δw| instead of the code's signed Δh, Δw. */
  absThreshold: boolean;
}

/** Default options = the reference code. */
export const CBR_DEFAULTS: CbrOptions = { spatialThreshold: 1, absThreshold: false };

/** Query rows per product tile. */
const QB = 64;

/**
 * Trajectory positions [F × hw] (entry f·hw + t = cell index of trajectory t in frame f) from raw features
 * [F × hw × C] of one batch.
 */
export function trackTrajectories(features: Float32Array, F: number, hw: number, C: number): Int32Array {
  if (features.length !== F * hw * C) {
    throw new Error(`cbr: features have ${features.length} values, expected ${F}×${hw}×${C}`);
  }
  const unit = l2NormalizeRows(features, F * hw, C);
  const pos = new Int32Array(F * hw);
  for (let t = 0; t < hw; t++) pos[t] = t;
  const target = new Float32Array(hw * C), query = new Float32Array(QB * C), tile = new Float64Array(QB * hw);
  const next = new Int32Array(hw), seen = new Uint8Array(hw);
  for (let q = 0; q + 1 < F; q++) {
    const w1 = q / (q + 1), w0 = 1 / (q + 1);
    const f1 = (q + 1) * hw * C;
    for (let i = 0; i < hw * C; i++) target[i] = w1 * unit[f1 + i] + w0 * unit[i];
    // distinct cells occupied in frame q, ascending
    seen.fill(0);
    for (let t = 0; t < hw; t++) seen[pos[q * hw + t]] = 1;
    const cells: number[] = [];
    for (let p = 0; p < hw; p++) if (seen[p]) cells.push(p);
    for (let c0 = 0; c0 < cells.length; c0 += QB) {
      const m = Math.min(QB, cells.length - c0);
      for (let i = 0; i < m; i++) {
        const src = (q * hw + cells[c0 + i]) * C;
        query.set(unit.subarray(src, src + C), i * C);
      }
      gemmABt(query, 0, m, target, 0, hw, C, tile, hw);
      for (let i = 0; i < m; i++) {
        let best = 0, bv = -Infinity;
        for (let p = 0; p < hw; p++) {
          const v = tile[i * hw + p];
          if (v > bv) (bv = v), (best = p);
        }
        next[cells[c0 + i]] = best;
      }
    }
    for (let t = 0; t < hw; t++) pos[(q + 1) * hw + t] = next[pos[q * hw + t]];
  }
  return pos;
}

/** 1 for each trajectory that passes the spatial test, 0 otherwise. */
export function spatialFilter(
  pos: Int32Array,
  F: number,
  h: number,
  w: number,
  opts: CbrOptions = CBR_DEFAULTS,
): Uint8Array {
  const hw = h * w, ok = new Uint8Array(hw).fill(1), thr = opts.spatialThreshold;
  for (let t = 0; t < hw; t++) {
    for (let f = 1; f < F; f++) {
      const a = pos[(f - 1) * hw + t], b = pos[f * hw + t];
      let dh = Math.floor(b / w) - Math.floor(a / w), dw = (b % w) - (a % w);
      if (opts.absThreshold) (dh = Math.abs(dh)), (dw = Math.abs(dw));
      if (dh > thr || dw > thr) {
        ok[t] = 0;
        break;
      }
    }
  }
  return ok;
}

/** `Counter(values).most_common(1)`: highest count, ties → the value seen first. */
export function mostCommonFirstSeen(values: ArrayLike<number>): number {
  let best = values[0], bestCount = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let seenBefore = false;
    for (let j = 0; j < i; j++) if (values[j] === v) (seenBefore = true), (j = i);
    if (seenBefore) continue;
    let c = 0;
    for (let j = i; j < values.length; j++) if (values[j] === v) c++;
    if (c > bestCount) (best = v), (bestCount = c);
  }
  return best;
}

/** Step 3: refined copy of `coarse` [F × hw] from the kept trajectories. */
export function voteAlongTrajectories(
  coarse: Int32Array,
  pos: Int32Array,
  keep: Uint8Array,
  F: number,
  hw: number,
): Int32Array {
  const out = coarse.slice(), votes = new Int32Array(F);
  for (let t = 0; t < hw; t++) {
    if (!keep[t]) continue;
    for (let f = 0; f < F; f++) votes[f] = coarse[f * hw + pos[f * hw + t]];
    const label = mostCommonFirstSeen(votes);
    for (let f = 0; f < F; f++) out[f * hw + pos[f * hw + t]] = label;
  }
  return out;
}

/** Trajectories of one batch plus the spatial test (label-free; can be computed before the KNN). */
export interface Tracks {
  pos: Int32Array;
  keep: Uint8Array;
}

/** Steps 1–2 for one batch of raw features [F × h·w × C]. */
export function computeTracks(
  features: Float32Array,
  F: number,
  h: number,
  w: number,
  C: number,
  opts: CbrOptions = CBR_DEFAULTS,
): Tracks {
  const pos = trackTrajectories(features, F, h * w, C);
  return { pos, keep: spatialFilter(pos, F, h, w, opts) };
}

/** One batch as {@link computeTracks} takes it: raw features [F × h·w × C], their sizes, the CBR options. */
export type TrackArgs = Parameters<typeof computeTracks>;

/** The whole CBR of one batch: coarse [F × h·w] + the batch's raw features (see {@link TrackArgs}) → refined maps. */
export function cbrRefine(coarse: Int32Array, ...batch: TrackArgs): Int32Array {
  const [, F, h, w] = batch;
  const { pos, keep } = computeTracks(...batch);
  return voteAlongTrajectories(coarse, pos, keep, F, h * w);
}
