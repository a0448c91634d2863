import * as path from "node:path";
import { flatParams } from "../stages/params.ts";
import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import { UserError } from "../../pipeline/errors.ts";
import { ROOT } from "../paths.ts";
import type { StageContext } from "../../pipeline/dag/stage.ts";
import { makeEvaluateStage } from "../../pipeline/stages/evaluate.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

const root = path.join(ROOT, "tests/fixtures/datasets/camvid");
const ctx: StageContext = { progress() {}, log() {} };
const params = flatParams({
  dataset: { kind: "camvid", root, split: null, clips: ["clipA"], max_frames: null },
  units: ["clipA"],
});

// Fixture clipA: 3 frames of 6×8; rows 0..3 have GT (⌊x/3⌋ + f) mod 3 for x = 0..7 → per row
// f0: [0 0 0 1 1 1 2 2], f1: [1 1 1 2 2 2 0 0], f2: [2 2 2 0 0 0 1 1]; rows 4..5 are 11 (void, ignored).
const gtRow = (f: number) => Array.from({ length: 8 }, (_, x) => (Math.floor(x / 3) + f) % 3);

Deno.test("evaluate stage: perfect labels score 100; undefined mVC on 3-frame clips is null", async () => {
  const stage = makeEvaluateStage("seg");
  assertEquals(stage.upstream, ["seg"]);
  // prediction = GT on rows 0..3, anything (here 0) on the void rows
  const pred = u8(
    [3, 6, 8],
    Uint8Array.from({ length: 144 }, (_, i) => {
      const f = Math.floor(i / 48), y = Math.floor((i % 48) / 8), x = i % 8;
      return y < 4 ? gtRow(f)[x] : 0;
    }),
  );
  const out = await stage.run(
    { "seg/clipA": { tensors: { labels: pred }, json: { frames: ["0001_f10", "0001_f12", "0001_f14"] } } },
    params,
    ctx,
  );
  const m = out.json.metrics as Record<string, any>;
  assertEquals(m.mIoU, 100);
  assertEquals(m.classIoU, { Sky: 100, Road: 100, Car: 100 });
  assertEquals(m.mVC8, null);
  assertEquals(m.frames, 3);
});

Deno.test("evaluate stage: hand-computed mIoU when one class is always predicted as another", async () => {
  // predict 1 wherever the GT is 2 (rows 0..3). Per frame and row: 3 px of class 0, 3 px of 1, 2 px of 2 in
  // some order; over 3 frames × 4 rows each class has the same totals up to the column layout:
  // class counts over all annotated pixels: class 0: 32, class 1: 32, class 2: 32 (3 frames × 4 rows × 8 = 96).
  // class 0: TP 32 → IoU 1; class 1: TP 32, FP 32 (GT 2 → 1) → 32/64 = 0.5; class 2: TP 0 → 0.
  // mIoU = (1 + 0.5 + 0)/3 = 50 %
  const pred = u8(
    [3, 6, 8],
    Uint8Array.from({ length: 144 }, (_, i) => {
      const f = Math.floor(i / 48), y = Math.floor((i % 48) / 8), x = i % 8;
      const g = y < 4 ? gtRow(f)[x] : 11;
      return g === 2 ? 1 : g;
    }),
  );
  const out = await makeEvaluateStage("labels").run(
    { "labels/clipA": { tensors: { labels: pred }, json: {} } },
    params,
    ctx,
  );
  const m = out.json.metrics as Record<string, any>;
  assertAlmostEquals(m.mIoU, 50, 1e-12);
  assertEquals(m.classIoU, { Sky: 100, Road: 50, Car: 0 });
});

Deno.test("evaluate stage: a GT of another size than its frame is one clear error naming the GT file", async () => {
  const stage = makeEvaluateStage("seg");
  // Predictions at 6×10 where the fixture's frames and GT are 6×8: the GT no longer matches its frame.
  const pred = u8([3, 6, 10]);
  let msg = "";
  try {
    await stage.run(
      { "seg/clipA": { tensors: { labels: pred }, json: { frames: ["0001_f10", "0001_f12", "0001_f14"] } } },
      params,
      ctx,
    );
  } catch (e) {
    assert(e instanceof UserError, String(e));
    msg = e.message;
  }
  assert(msg.includes("GT is 8×6 but its frame is 10×6"), msg);
  assert(msg.includes(path.join(root, "")), msg);
});
