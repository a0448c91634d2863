import * as path from "node:path";
import { assertEquals, assertThrows } from "../assert.ts";
import { DATA, ROOT } from "../paths.ts";
import { UserError } from "../../pipeline/errors.ts";
import { loadDataset, readGt } from "../../pipeline/data/dataset.ts";
import { sortFrameFiles } from "../../pipeline/data/clip.ts";

const FIX = path.join(ROOT, "tests/fixtures/datasets");
const at = (...p: string[]) => path.join(FIX, ...p);

Deno.test("CamVid: clips.json order, GT per frame, classes/void/palette from classes.json", () => {
  const clips = loadDataset({ kind: "camvid", root: at("camvid") });
  assertEquals(clips.map((c) => c.name), ["clipA", "clipB"]);
  const a = clips[0];
  assertEquals(a.frames.map((f) => f.name), ["0001_f10", "0001_f12", "0001_f14"]);
  assertEquals(a.frames[1].image, at("camvid/clipA/images/0001_f12.png"));
  assertEquals(a.frames[1].gt, at("camvid/clipA/labels/0001_f12.png"));
  assertEquals(a.classes, [{ id: 0, name: "Sky" }, { id: 1, name: "Road" }, { id: 2, name: "Car" }]);
  assertEquals(a.ignoreIds, [11]);
  assertEquals(a.palette[1], [128, 64, 128]);
  // frame 1's GT: rows 0..3 = (⌊x/3⌋ + 1) mod 3 → [1, 1, 1, 2, 2, 2, 0, 0]
  assertEquals(Array.from(readGt(a, 1)!.data.subarray(0, 8)), [1, 1, 1, 2, 2, 2, 0, 0]);
  // selection: split, clip names, max_frames
  assertEquals(loadDataset({ kind: "camvid", root: at("camvid"), split: "train" }).map((c) => c.name), [
    "clipB",
  ]);
  const sel = loadDataset({ kind: "camvid", root: at("camvid"), clips: ["clipB"], maxFrames: 1 });
  assertEquals(sel.map((c) => [c.name, c.frames.length]), [["clipB", 1]]);
});

Deno.test("the shipped CamVid subset in data/camvid loads (3 clips × 28 frames)", () => {
  const clips = loadDataset({ kind: "camvid", root: path.join(DATA, "camvid") });
  assertEquals(clips.length, 3);
  for (const c of clips) assertEquals(c.frames.length, 28);
  assertEquals(clips[0].classes.length, 11);
});

Deno.test("VSPW: split file order, integer frame order, 0/255 ignored, class names", () => {
  const clips = loadDataset({ kind: "vspw", root: at("vspw") });
  assertEquals(clips.map((c) => c.name), ["12_xyz", "1001_abc"]); // sorted by integer prefix: 12 < 1001
  assertEquals(clips[1].frames.map((f) => f.name), ["00000002", "00000006", "00000010"]);
  assertEquals(clips[1].frames[2].gt, at("vspw/data/1001_abc/mask/00000010.png"));
  assertEquals(clips[0].ignoreIds, [0, 255]);
  assertEquals(clips[0].classes.length, 124);
  assertEquals(clips[0].classes.slice(0, 4), [{ id: 1, name: "wall" }, { id: 2, name: "ceiling" }, {
    id: 3,
    name: "door",
  }, {
    id: 4,
    name: "class_4",
  }]);
  assertThrows(
    () => loadDataset({ kind: "vspw", root: at("vspw"), split: "test" }),
    UserError,
    `${at("vspw", "test.txt")}: split file`,
  );
});

Deno.test("Cityscapes: one clip per run of consecutive frames, GT only on the annotated frame", () => {
  const clips = loadDataset({ kind: "cityscapes", root: at("cityscapes") });
  // frames 10..13 (GT on 12) and 40..42 (GT on 41) of aachen_000000
  assertEquals(clips.map((c) => c.name), ["aachen_000000_000012", "aachen_000000_000041"]);
  const c = clips[0];
  assertEquals(c.frames.map((f) => f.name), [
    "aachen_000000_000010",
    "aachen_000000_000011",
    "aachen_000000_000012",
    "aachen_000000_000013",
  ]);
  assertEquals(c.frames.map((f) => f.gt !== null), [false, false, true, false]);
  assertEquals(
    c.frames[2].gt,
    at("cityscapes/gtFine/val/aachen/aachen_000000_000012_gtFine_labelTrainIds.png"),
  );
  assertEquals(c.classes.length, 19);
  assertEquals(c.classes[13], { id: 13, name: "car" });
  assertEquals(c.ignoreIds, [255]);
});

Deno.test("frames folders: integer order when every name is numeric, else lexicographic; sub-folders = clips", () => {
  const [v] = loadDataset({ kind: "frames", root: at("frames/video") });
  assertEquals(v.name, "video");
  assertEquals(v.frames.map((f) => f.name), ["1", "2", "10"]);
  assertEquals(v.frames.every((f) => f.gt === null), true);
  const multi = loadDataset({ kind: "frames", root: at("frames_multi") });
  assertEquals(multi.map((c) => c.name), ["cam_a", "cam_b"]);
  assertEquals(multi[0].frames.map((f) => f.name), ["a", "b", "c"]);
  assertEquals(sortFrameFiles(["10.png", "9.png", "00011.png"]), ["9.png", "10.png", "00011.png"]);
  assertEquals(sortFrameFiles(["b.png", "10.png", "a.png"]), ["10.png", "a.png", "b.png"]);
});

Deno.test("wrong layouts are one-line UserErrors naming the expected layout and what was found", () => {
  const err = (fn: () => unknown) => assertThrows(fn, UserError).message;
  assertEquals(
    err(() => loadDataset({ kind: "camvid", root: at("not_camvid") })),
    `${
      at("not_camvid")
    }: not a CamVid dataset: expected classes.json, clips.json and <clip>/images/*.png with <clip>/labels/*.png; found images/, notes.txt`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "camvid", root: at("camvid_missing_label") })),
    `${
      at("camvid_missing_label/clipA/labels/b.png")
    }: label file of this frame is missing (CamVid labels/<frame>.png)`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "camvid", root: at("camvid"), clips: ["clipZ"] })),
    `${at("camvid")}: no clip "clipZ" (known clips: clipA, clipB)`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "vspw", root: at("camvid") })),
    `${
      at("camvid")
    }: not a VSPW dataset: expected data/<video>/origin/*.jpg and data/<video>/mask/*.png (optional <split>.txt); found classes.json, clipA/, clipB/, clips.json`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "cityscapes", root: at("vspw") })),
    `${
      at("vspw")
    }: not a Cityscapes dataset: expected leftImg8bit_sequence/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelTrainIds.png; found no folder leftImg8bit_sequence/val`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "frames", root: at("empty_folder") })),
    `${
      at("empty_folder")
    }: not a frames dataset: expected image files (.png, .jpg, .jpeg, .webp, .tif, .tiff) in the folder or in its sub-folders; found .keep`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "frames", root: at("does_not_exist") })),
    `${
      at("does_not_exist")
    }: not a frames dataset: expected image files (.png, .jpg, .jpeg, .webp, .tif, .tiff) in the folder or in its sub-folders; found nothing (the folder does not exist)`,
  );
  assertEquals(
    err(() => loadDataset({ kind: "bogus" as "camvid", root: FIX })),
    `dataset.kind: unknown dataset kind "bogus" (expected camvid, vspw, cityscapes or frames)`,
  );
});
