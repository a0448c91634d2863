import { assertEquals, assertThrows } from "../assert.ts";
import { contextLoop, distinctBatches, firstFrameLabels, planBatches } from "../../pipeline/seg/video.ts";

const ranges = (N: number, bs: number, dedupe = false) =>
  planBatches(N, bs, dedupe).map((r) => [r.start, r.end]);

Deno.test("batch split: overlapping last batch, duplicated when F divides N, short videos, frame by frame", () => {
  // N = 30: ⌊30/14⌋ + 1 = 3 batches; the third [28, 30) ends at N → moved to [16, 30)
  assertEquals(ranges(30, 14), [[0, 14], [14, 28], [16, 30]]);
  // N = 28: batch 1 [14, 28) ends at N (start stays 14); batch 2 [28, 28) → [14, 28) again
  assertEquals(ranges(28, 14), [[0, 14], [14, 28], [14, 28]]);
  assertEquals(ranges(28, 14, true), [[0, 14], [14, 28]]);
  // N < 14 → F = N (the reference crashes): [0, 5) twice, once deduplicated
  assertEquals(ranges(5, 14), [[0, 5], [0, 5]]);
  assertEquals(ranges(5, 14, true), [[0, 5]]);
  // batch size 1: every frame, the last one twice
  assertEquals(ranges(3, 1), [[0, 1], [1, 2], [2, 3], [2, 3]]);
  assertEquals(distinctBatches(planBatches(30, 14)).length, 3);
  assertEquals(distinctBatches(planBatches(28, 14)).map((r) => [r.start, r.end]), [[0, 14], [14, 28]]);
  assertThrows(() => planBatches(0, 14));
});

/** 1-D features, one cell per frame row of `values`. */
const rows1d = (frames: number[][]) => Float32Array.from(frames.flat());

Deno.test("KNN memory is replaced by each batch (frame-by-frame drift is followed)", () => {
  // 4 cells, 1-D features, frame t = [0, 1, 10, 11] + 3t; frame-0 labels [5, 5, 7, 7]; batch size 1, k = 1.
  // Frame 3 = [9, 10, 19, 20]. With the memory replaced by frame 2 = [6, 7, 16, 17] (labels [5, 5, 7, 7]),
  // 10 is nearest 7 → 5. Against frame 0 only it would be nearest 10 → 7 (wrong).
  const frames = [0, 1, 2, 3].map((t) => [0, 1, 10, 11].map((v) => v + 3 * t));
  const X = rows1d(frames);
  const plan = planBatches(4, 1);
  const res = contextLoop(
    plan,
    4,
    { h: 1, w: 4, C: 1 },
    (r) => ({ agg: X.subarray(r.start * 4, r.end * 4) }),
    Int32Array.from([5, 5, 7, 7]),
    {
      k: 1,
      cbr: null,
    },
  );
  assertEquals(Array.from(res.coarse), [5, 5, 7, 7, 5, 5, 7, 7, 5, 5, 7, 7, 5, 5, 7, 7]);
  assertEquals(res.batches.length, 5); // 4 frames + the repeated last one
});

Deno.test("frame 0's coarse map is the KNN re-prediction, not the raw assignment", () => {
  // frame-0 features [0, 1, 2, 10] with assigned labels [5, 5, 7, 7]; k = 3 over the frame-0 memory itself:
  // cell 2 (x = 2): neighbours 2, 1, 0 → labels 7, 5, 5 → 5; cell 3 (x = 10): neighbours 10, 2, 1 → 7, 7, 5 → 7
  const X = rows1d([[0, 1, 2, 10]]);
  const res = contextLoop(
    [{ start: 0, end: 1 }],
    1,
    { h: 2, w: 2, C: 1 },
    () => ({ agg: X }),
    Int32Array.from([5, 5, 7, 7]),
    {
      k: 3,
      cbr: null,
    },
  );
  assertEquals(Array.from(res.coarse), [5, 5, 5, 7]);
});

Deno.test("K-Means fit set: all frames of batch 0 (code) vs frame 0 (paper) changes the assignment", () => {
  // frame 0 = [0, 0, 9, 9, 20, 20] with GT [1, 1, 2, 2, 3, 3], frame 1 = six 14s, K = 2.
  // first_frame: {0,0,9,9 | 20,20} (inertia 4·4.5² = 81 < {0,0 | 9,9,20,20}: 4·5.5² = 121)
  //   → cluster {0,0,9,9} has GT 1,1,2,2 (tie → 1) → [1, 1, 1, 1, 3, 3]
  // batch: {0,0 | 9,9,14×6,20,20} (mean 14.2: 2·5.2² + 6·0.2² + 2·5.8² = 121.6) beats
  //   {0,0,9,9 | 14×6,20,20} (81 + 6·1.5² + 2·4.5² = 135) → cluster {9,9,20,20} has GT 2,2,3,3 (tie → 2)
  //   → [1, 1, 2, 2, 2, 2]
  const X = rows1d([[0, 0, 9, 9, 20, 20], [14, 14, 14, 14, 14, 14]]);
  const gt = [1, 1, 2, 2, 3, 3], dims = { h: 2, w: 3, C: 1 };
  const paper = firstFrameLabels(X, 2, dims, gt, { k: 2, fit: "first_frame", seed: 1 });
  assertEquals(Array.from(paper.refLabels), [1, 1, 1, 1, 3, 3]);
  assertEquals(paper.labels, [1, 3]);
  const code = firstFrameLabels(X, 2, dims, gt, { k: 2, fit: "batch", seed: 1 });
  assertEquals(Array.from(code.refLabels), [1, 1, 2, 2, 2, 2]);
  assertEquals(code.labels, [1, 2]);
  // without GT the cluster ids are the labels
  const single = firstFrameLabels(X, 2, dims, null, { k: 2, fit: "batch", seed: 1 });
  assertEquals(Array.from(single.refLabels), Array.from(single.clusters));
});

Deno.test("context loop runs CBR on each batch and feeds the refined labels to the next memory", () => {
  // 2×2 grid, 1-D KNN features constant in time: cell values [0, 1, 10, 11], labels [5, 5, 7, 7].
  // CBR features are one-hot (identity trajectories). Frame 1's KNN output would equal frame 0's, so to see the
  // vote we use k = 1 with a KNN feature that drifts cell 1 towards cell 2 in frame 1 only (1 → 9: nearest 10 → 7).
  // Trajectory 1 then votes [5, 7, 5] → 5 and fixes frame 1.
  const agg = rows1d([[0, 1, 10, 11], [0, 9, 10, 11], [0, 1, 10, 11]]);
  const cbr = new Float32Array(3 * 4 * 4);
  for (let f = 0; f < 3; f++) for (let p = 0; p < 4; p++) cbr[(f * 4 + p) * 4 + p] = 1;
  const featuresOf = (r: { start: number; end: number }) => ({
    agg: agg.subarray(r.start * 4, r.end * 4),
    cbr: cbr.subarray(r.start * 16, r.end * 16),
  });
  const dims = { h: 2, w: 2, C: 1, cbrC: 4 };
  const off = contextLoop([{ start: 0, end: 3 }], 3, dims, featuresOf, Int32Array.from([5, 5, 7, 7]), {
    k: 1,
    cbr: null,
  });
  assertEquals(Array.from(off.coarse.subarray(4, 8)), [5, 7, 7, 7]);
  const on = contextLoop([{ start: 0, end: 3 }], 3, dims, featuresOf, Int32Array.from([5, 5, 7, 7]), {
    k: 1,
    cbr: { options: { spatialThreshold: 1, absThreshold: false } },
  });
  assertEquals(Array.from(on.coarse.subarray(4, 8)), [5, 5, 7, 7]);
  assertEquals(
    Array.from(on.batches[0].knn.subarray(4, 8)),
    [5, 7, 7, 7],
    "the unrefined KNN output is kept too",
  );
});
