import { assert, assertAlmostEquals, assertEquals, assertLess } from "../assert.ts";
import { syntheticVideo } from "../../pipeline/data/synthetic.ts";
import { gtAtGrid } from "../../pipeline/data/dataset.ts";
import {
  framesFromBatches,
  majorityMapping,
  type ProbeClip,
  probeFeatures,
} from "../../pipeline/seg/probe.ts";
import { createRng } from "../../pipeline/seg/rng.ts";
import { f32, u8 } from "../../pipeline/tensor/tensor.ts";

const N = 10, H = 96, W = 128, GH = 6, GW = 8, C = 16;
const video = syntheticVideo({ frames: N, height: H, width: W, seed: 2 });
const classIds = video.classes.map((c) => c.id);

/** GT of every frame nearest-resized to the GH×GW grid, [N, GH·GW]. */
function gridGt(): Uint8Array {
  const out = new Uint8Array(N * GH * GW);
  for (let f = 0; f < N; f++) {
    const gt = u8([H, W], video.gt.data.slice(f * H * W, (f + 1) * H * W));
    out.set(gtAtGrid(gt, GH, GW).data, f * GH * GW);
  }
  return out;
}
const gt = gridGt();

/** Features [N, GH·GW, C] from a per-cell function. */
function features(fn: (f: number, cell: number, c: number) => number): Float32Array {
  const X = new Float32Array(N * GH * GW * C);
  for (let f = 0; f < N; f++) {
    for (let i = 0; i < GH * GW; i++) {
      for (let c = 0; c < C; c++) X[(f * GH * GW + i) * C + c] = fn(f, i, c);
    }
  }
  return X;
}

const rng = createRng(5);
const embed = Array.from({ length: classIds.length }, () => Array.from({ length: C }, () => rng.normal()));
const noise = Array.from({ length: N * GH * GW * C }, () => rng.normal());
const clip = (name: string, X: Float32Array): ProbeClip => ({
  name,
  features: f32([N, GH * GW, C], X),
  gt: u8([N, GH * GW], gt),
});
const km = { k: 6, nInit: 4, seed: 1 };

Deno.test("probe: features that separate the GT regions give mIoU 100 and stability 100", () => {
  // Every class present on the grid, so the mIoU is over all four classes.
  for (const id of classIds) assert(gt.includes(id), `class ${id} on the grid`);
  const X = features((f, i, c) => embed[gt[f * GH * GW + i]][c] + 0.01 * noise[(f * GH * GW + i) * C + c]);
  const r = probeFeatures([clip("synthetic", X)], classIds, km);
  assertAlmostEquals(r.mIoU!, 100, 1e-9);
  for (const c of r.classIoU) assertAlmostEquals(c.iou!, 100, 1e-9);
  assertAlmostEquals(r.stability!, 100, 1e-9);
  assertEquals(r.perClip.length, 1);
});

Deno.test("probe: features of image position alone score well below 100, class features survive noise", () => {
  // Position: smooth gradients over the grid, identical in every frame (what an untrained backbone shows).
  const pos = features((_f, i, c) =>
    Math.cos((c + 1) * ((i % GW) / GW) + (c % 3) * (Math.floor(i / GW) / GH))
  );
  const rPos = probeFeatures([clip("position", pos)], classIds, km);
  assertLess(rPos.mIoU!, 80);
  const noisy = features((f, i, c) => embed[gt[f * GH * GW + i]][c] + 0.3 * noise[(f * GH * GW + i) * C + c]);
  const rNoisy = probeFeatures([clip("noisy", noisy)], classIds, km);
  assertLess(rPos.mIoU!, rNoisy.mIoU!);
  assertLess(90, rNoisy.mIoU!);
});

Deno.test("probe: majority mapping counts only evaluated classes, ties go to the lower class", () => {
  const clusters = new Int32Array([0, 0, 0, 1, 1, 2]);
  const labels = [5, 5, 9, 7, 9, 11]; // 11 is not evaluated
  assertEquals([...majorityMapping(clusters, labels, 3, [5, 7, 9])], [5, 7, -1]);
});

Deno.test("probe: frames are taken from the first batch that holds them", () => {
  // Batches [0,3) and [1,4) (an overlapping last batch): rows 0..2 then 3..5; frame 3 is row 5.
  const q = f32([6, 1, 1], new Float32Array([10, 11, 12, 21, 22, 23]));
  assertEquals([...framesFromBatches(q, [[0, 3], [1, 4]], 4).data], [10, 11, 12, 23]);
});
