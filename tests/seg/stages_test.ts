import { assertEquals, assertRejects } from "../assert.ts";
import type { Artifacts, StageContext } from "../../pipeline/dag/stage.ts";
import { cbrStage } from "../../pipeline/stages/cbr.ts";
import { kmeansStage } from "../../pipeline/stages/kmeans.ts";
import { knnStage } from "../../pipeline/stages/knn.ts";
import { f32, type Tensor, u8 } from "../../pipeline/tensor/tensor.ts";

const arr = (t: Tensor, from = 0, to?: number) => Array.from((t.data as Int32Array).subarray(from, to));

const ctx: StageContext = { progress() {}, log() {} };
const params = (over: Record<string, unknown> = {}) => ({
  "features.aggregate": true,
  "features.blocks": [6, 7, 8],
  "features.block": 7,
  "cbr.block": 7,
  "kmeans.k": 2,
  "kmeans.n_init": 2,
  "kmeans.max_iter": 300,
  "kmeans.tol": 1e-4,
  "kmeans.fit": "batch",
  seed: 1,
  batch_size: 2,
  dedupe_last_batch: false,
  "knn.k": 1,
  "cbr.enabled": false,
  "cbr.spatial_threshold": 1,
  "cbr.abs_threshold": false,
  ...over,
});

// Grid 1×2, 2-D features, N = 3 frames, batch size 2 → plan [0, 2), [1, 3).
const A = [1, 0], B = [0, 1];
/** Feature artifact from rows (each row = one frame's two cells). */
const features = (rows: number[][][], batches?: [number, number][]): Artifacts => ({
  tensors: { features_agg: f32([rows.length, 2, 2], Float32Array.from(rows.flat(2))) },
  json: { grid: [1, 2], frames: ["f0", "f1", "f2"], ...(batches ? { batches } : {}) },
});
const frames: Artifacts = { tensors: { gt_grid: u8([1, 2], Uint8Array.from([4, 9])) }, json: {} };

async function run(feat: Artifacts, over: Record<string, unknown> = {}, fr: Artifacts | null = frames) {
  const p = params(over);
  const kmeans = await kmeansStage.run(fr ? { features: feat, frames: fr } : { features: feat }, p, ctx);
  const cbr = await cbrStage.run({ features: feat }, p, ctx);
  const knn = await knnStage.run({ features: feat, kmeans, cbr }, p, ctx);
  return { kmeans, cbr, knn };
}

Deno.test("stages: artifact names and shapes; per-batch feature rows; later batches overwrite", async () => {
  // rows per batch: [0, 2) = frames 0, 1 with cells (A, B); [1, 3) = frames 1, 2 with cells swapped (B, A).
  // Frame 0: A → cluster → GT 4, B → 9. Batch 0 (memory = frame 0): frames 0, 1 → [4, 9], [4, 9].
  // Batch 1 (memory = batch 0): B → 9, A → 4, so frames 1, 2 → [9, 4]; frame 1 is overwritten by batch 1.
  const feat = features([[A, B], [A, B], [B, A], [B, A]], [[0, 2], [1, 3]]);
  const { kmeans, cbr, knn } = await run(feat);
  assertEquals(kmeans.json.labels, [4, 9]);
  assertEquals(arr(kmeans.tensors.ref_labels), [4, 9]);
  assertEquals(kmeans.tensors.clusters.shape, [1, 2]);
  assertEquals(kmeans.tensors.centers.shape, [2, 2]);
  assertEquals(cbr.json, { enabled: false, batches: [[0, 2], [1, 3]] });
  assertEquals(knn.tensors.coarse.shape, [3, 1, 2]);
  assertEquals(arr(knn.tensors.coarse), [4, 9, 9, 4, 9, 4]);
  assertEquals(knn.tensors.coarse_batches.shape, [2, 2, 1, 2]);
  assertEquals(arr(knn.tensors.coarse_batches), [4, 9, 4, 9, 9, 4, 9, 4]);
  assertEquals(arr(knn.tensors.coarse_knn), [4, 9, 4, 9, 9, 4, 9, 4]);
  assertEquals(knn.json, {
    labels: [4, 9],
    batches: [[0, 2], [1, 3]],
    frames: ["f0", "f1", "f2"],
    grid: [1, 2],
  });
});

Deno.test("stages: one row per frame when the features have no batch list", async () => {
  // rows = frames: f1 keeps (A, B) in batch [1, 3) → [4, 9]; f2 = (B, A) → [9, 4]
  const { knn } = await run(features([[A, B], [A, B], [B, A]]));
  assertEquals(arr(knn.tensors.coarse), [4, 9, 4, 9, 9, 4]);
});

Deno.test("stages: single-video mode keeps cluster ids; CBR needs the CBR features", async () => {
  const feat = features([[A, B], [A, B], [B, A]]);
  const { kmeans } = await run(feat, {}, null);
  assertEquals(kmeans.json.labels, [0, 1]);
  assertEquals(arr(kmeans.tensors.ref_labels), arr(kmeans.tensors.clusters));
  await assertRejects(
    () => cbrStage.run({ features: feat }, params({ "cbr.enabled": true, "cbr.block": 7 }), ctx),
    Error,
    "features artifact has no tensor q7",
  );
});

Deno.test("stages: CBR trajectories per distinct batch feed the knn stage", async () => {
  // one-hot CBR features (identity trajectories); KNN features drift in frame 1 only (cell 1 looks like A) so the
  // KNN says [4, 4] there; the vote over the batch [0, 2) along trajectory 1 gives [9, 4] → first seen 9.
  const feat = features([[A, B], [A, A], [A, B]]);
  feat.tensors.features_cbr = f32([3, 2, 2], Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1]));
  const on = await run(feat, { "cbr.enabled": true, dedupe_last_batch: true });
  assertEquals(on.cbr.tensors.tracks.shape, [2, 2, 2]);
  assertEquals(arr(on.cbr.tensors.tracks), [0, 1, 0, 1, 0, 1, 0, 1]);
  assertEquals(on.cbr.tensors.track_keep.shape, [2, 2]);
  assertEquals(arr(on.knn.tensors.coarse_knn, 0, 4), [4, 9, 4, 4]);
  assertEquals(arr(on.knn.tensors.coarse_batches, 0, 4), [4, 9, 4, 9]);
  const off = await run(feat, { dedupe_last_batch: true });
  assertEquals(arr(off.knn.tensors.coarse_batches, 0, 4), [4, 9, 4, 4]);
});

Deno.test("stages: malformed feature artifacts are reported", async () => {
  const bad = { tensors: { features_agg: f32([3, 5, 2]) }, json: { grid: [1, 2], frames: ["a", "b", "c"] } };
  await assertRejects(
    () => kmeansStage.run({ features: bad }, params(), ctx),
    Error,
    "features_agg must be [T, 2, C], got [3,5,2]",
  );
  await assertRejects(
    () => kmeansStage.run({ features: { tensors: {}, json: {} } }, params(), ctx),
    Error,
    "json.grid must be [h, w]",
  );
});
