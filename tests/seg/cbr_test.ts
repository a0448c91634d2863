/**
 * CBR on one-hot toy features: on a 3×4 grid (cells 0..11, row-major) the feature of a cell is e_p, the unit
 * vector of its own index, so cos = 1 for the "same" cell and 0 otherwise; swapping two cells' features in a
 * frame fakes a match far away.
 */
import { assertEquals } from "../assert.ts";
import {
  cbrRefine,
  mostCommonFirstSeen,
  spatialFilter,
  trackTrajectories,
  voteAlongTrajectories,
} from "../../pipeline/seg/cbr.ts";

const h = 3, w = 4, hw = 12;

/** F frames of one-hot features; `swaps[f]` lists pairs of cells whose features are exchanged in frame f. */
function oneHot(F: number, swaps: Record<number, [number, number][]> = {}): Float32Array {
  const X = new Float32Array(F * hw * hw);
  for (let f = 0; f < F; f++) {
    const src = Array.from({ length: hw }, (_, p) => p);
    for (const [a, b] of swaps[f] ?? []) [src[a], src[b]] = [src[b], src[a]];
    for (let p = 0; p < hw; p++) X[(f * hw + p) * hw + src[p]] = 1;
  }
  return X;
}

const traj = (pos: Int32Array, F: number, t: number) => Array.from({ length: F }, (_, f) => pos[f * hw + t]);

Deno.test("trajectories: frame 1 ignores its own features (weight 0/1), then the anchor weights apply", () => {
  // frame 1 swaps cells 0 and 3. q = 0: score = 0·cos(e_0, f1) + 1·cos(e_0, f0) → stays at 0 (the quirk).
  // q = 1: s = f1(0) = e_3, target = ½ f2 + ½ f0 = e_p at every p → cell 3. So trajectory 0 = [0, 0, 3].
  const pos = trackTrajectories(oneHot(3, { 1: [[0, 3]] }), 3, hw, hw);
  assertEquals(traj(pos, 3, 0), [0, 0, 3]);
  assertEquals(traj(pos, 3, 3), [3, 3, 0]);
  assertEquals(traj(pos, 3, 5), [5, 5, 5]);
});

Deno.test("trajectories: at q = 2 the next frame weighs 2/3 against the anchor's 1/3", () => {
  // frames 0..2 identity, frame 3 swaps 0 ↔ 11. From e_0 at q = 2: score(11) = ⅔·1 + ⅓·0 = ⅔ > score(0) = ⅔·0 + ⅓·1
  const pos = trackTrajectories(oneHot(4, { 3: [[0, 11]] }), 4, hw, hw);
  assertEquals(traj(pos, 4, 0), [0, 0, 0, 11]);
  assertEquals(traj(pos, 4, 11), [11, 11, 11, 0]);
});

Deno.test("trajectories: an exact score tie goes to the first cell", () => {
  // frame 2 swaps 0 ↔ 11; at q = 1 the weights are ½/½ and target(0) = target(11) = ½(e_0 + e_11):
  // from e_11 both cells score ½ → the lower index 0 wins; from e_0 likewise → 0
  const pos = trackTrajectories(oneHot(3, { 2: [[0, 11]] }), 3, hw, hw);
  assertEquals(traj(pos, 3, 11), [11, 11, 0]);
  assertEquals(traj(pos, 3, 0), [0, 0, 0]);
});

Deno.test("spatial test is signed by default (only down/right jumps > 1 cell reject), |Δ| optionally", () => {
  // F = 2; trajectory t moves from cell t to target[t]: 0 → 11 is (+2 rows, +3 cols), 11 → 0 is (−2, −3),
  // 5 → 6 is (0, +1) (within the threshold), 5 → 7 would be +2 cols
  const pos = new Int32Array(2 * hw);
  for (let t = 0; t < hw; t++) (pos[t] = t), (pos[hw + t] = t);
  pos[hw + 0] = 11;
  pos[hw + 11] = 0;
  pos[hw + 5] = 6;
  pos[hw + 2] = 0; // (0,2) → (0,0): Δw = −2
  const signed = spatialFilter(pos, 2, h, w);
  assertEquals([signed[0], signed[11], signed[5], signed[2]], [0, 1, 1, 1]);
  const abs = spatialFilter(pos, 2, h, w, { spatialThreshold: 1, absThreshold: true });
  assertEquals([abs[0], abs[11], abs[5], abs[2]], [0, 0, 1, 0]);
  const loose = spatialFilter(pos, 2, h, w, { spatialThreshold: 3, absThreshold: false });
  assertEquals([loose[0], loose[11]], [1, 1]);
});

Deno.test("Counter.most_common tie rule: the label seen first", () => {
  assertEquals(mostCommonFirstSeen([2, 1, 1, 2]), 2); // 2–2 tie, 2 seen first (not the smaller 1)
  assertEquals(mostCommonFirstSeen([4, 9, 9, 4, 9]), 9);
  assertEquals(mostCommonFirstSeen([7]), 7);
});

Deno.test("votes: later trajectories overwrite shared positions; unvisited and rejected cells keep their label", () => {
  // F = 3, two cells. t0 = [0, 0, 1], t1 = [1, 1, 1]; coarse frames [5, 6], [5, 6], [9, 6].
  // t0 votes [5, 5, coarse₂(1) = 6] → 5, writes (2, 1) = 5; t1 votes [6, 6, 6] → 6, overwrites (2, 1) = 6.
  // Frame 2 cell 0 is on no trajectory and keeps 9.
  const pos = Int32Array.from([0, 1, 0, 1, 1, 1]);
  const coarse = Int32Array.from([5, 6, 5, 6, 9, 6]);
  assertEquals(Array.from(voteAlongTrajectories(coarse, pos, Uint8Array.from([1, 1]), 3, 2)), [
    5,
    6,
    5,
    6,
    9,
    6,
  ]);
  // with t1 rejected, t0's write stays: frame 2 = [9, 5]
  assertEquals(Array.from(voteAlongTrajectories(coarse, pos, Uint8Array.from([1, 0]), 3, 2)), [
    5,
    6,
    5,
    6,
    9,
    5,
  ]);
});

Deno.test("CBR toy: the vote fixes flipped cells, the spatial test rejects a far false match", () => {
  // B = [1 1 2 2 / 1 1 2 2 / 3 3 3 3]; KNN maps = B in 4 frames except: frame 1 cell 5 → 2 (flip),
  // cell 6 → 1 in frames 1 and 2 (two flips). Features: identity, frame 3 swaps 0 ↔ 11, so trajectory 0 =
  // [0, 0, 0, 11] (jump +2 rows +3 cols: rejected) and trajectory 11 = [11, 11, 11, 0] (jump −2, −3: kept by the
  // signed test). Votes: t5 [1, 2, 1, 1] → 1 fixes (1, 5); t6 [2, 1, 1, 2] → 2 (first seen) fixes (1, 6), (2, 6);
  // t11 [3, 3, 3, B0 = 1] → 3 writes (3, 0) = 3 — the false match leaks through the signed test.
  const B = [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3];
  const coarse = Int32Array.from([...B, ...B, ...B, ...B]);
  coarse[hw + 5] = 2;
  coarse[hw + 6] = 1;
  coarse[2 * hw + 6] = 1;
  const feats = oneHot(4, { 3: [[0, 11]] });
  const expectSigned = [...B, ...B, ...B, 3, ...B.slice(1)];
  assertEquals(Array.from(cbrRefine(coarse, feats, 4, h, w, hw)), expectSigned);
  // |Δ| test: t11 is rejected too, so every frame is B
  assertEquals(
    Array.from(cbrRefine(coarse, feats, 4, h, w, hw, { spatialThreshold: 1, absThreshold: true })),
    [...B, ...B, ...B, ...B],
  );
  // threshold 3 keeps t0 as well: t0 votes [1, 1, 1, B11 = 3] → 1 and writes (3, 11) = 1
  const loose = cbrRefine(coarse, feats, 4, h, w, hw, { spatialThreshold: 3, absThreshold: false });
  assertEquals([loose[3 * hw + 0], loose[3 * hw + 11]], [3, 1]);
  // a single frame is left as is
  assertEquals(
    Array.from(cbrRefine(coarse.subarray(hw, 2 * hw), feats.subarray(0, hw * hw), 1, h, w, hw)),
    Array.from(coarse.subarray(hw, 2 * hw)),
  );
});
