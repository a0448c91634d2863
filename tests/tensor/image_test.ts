import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { UserError } from "../../pipeline/errors.ts";
import {
  decodeLabelPng,
  encodeLabelPng,
  imageSize,
  readImage,
  readLabelImage,
  writeImage,
} from "../../pipeline/tensor/image.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

const FIX = path.join(ROOT, "tests/fixtures/datasets");
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-image-"));

Deno.test("label PNGs written by PIL decode to their stored values (palette 8-bit, palette 4-bit, grey)", () => {
  // VSPW-style mode "P" mask made by PIL: row 0 = 0 ("others"), column 0 = 255 (void), else 1 + (x + y) mod 3
  const m = readLabelImage(path.join(FIX, "vspw/data/12_xyz/mask/00000001.png"));
  assertEquals(m.shape, [6, 8]);
  assertEquals(Array.from(m.data.subarray(0, 8)), [0, 0, 0, 0, 0, 0, 0, 0]);
  assertEquals(Array.from(m.data.subarray(8, 16)), [255, 3, 1, 2, 3, 1, 2, 3]);
  // PIL `save(bits=4)`: value (x + y) mod 16, two pixels per byte
  const p4 = readLabelImage(path.join(FIX, "palette_4bit.png"));
  assertEquals(Array.from(p4.data.subarray(8, 16)), [1, 2, 3, 4, 5, 6, 7, 8]);
  // CamVid-style mode "L": rows 0..3 = (⌊x/3⌋ + frame) mod 3, rows 4..5 = 11 (void); frame 0
  const g = readLabelImage(path.join(FIX, "camvid/clipA/labels/0001_f10.png"));
  assertEquals(Array.from(g.data.subarray(0, 8)), [0, 0, 0, 1, 1, 1, 2, 2]);
  assertEquals(Array.from(g.data.subarray(40, 48)), [11, 11, 11, 11, 11, 11, 11, 11]);
});

Deno.test("encodeLabelPng round-trips grey and palette label maps", () => {
  const labels = u8([3, 5], Uint8Array.from({ length: 15 }, (_, i) => (i * 37) % 256));
  assertEquals(Array.from(decodeLabelPng(encodeLabelPng(labels), "grey").data), Array.from(labels.data));
  const withPalette = encodeLabelPng(labels, [[1, 2, 3], [4, 5, 6]]);
  assertEquals(withPalette[25], 3, "colour type 3 (palette)");
  assertEquals(Array.from(decodeLabelPng(withPalette, "pal").data), Array.from(labels.data));
});

Deno.test("readImage gives RGB [H, W, 3]; writeImage PNG round-trips exactly", async () => {
  const dir = tmp();
  const t = u8([2, 3, 3], Uint8Array.from({ length: 18 }, (_, i) => i * 13));
  await writeImage(path.join(dir, "a.png"), t);
  const back = await readImage(path.join(dir, "a.png"));
  assertEquals(back.shape, [2, 3, 3]);
  assertEquals(Array.from(back.data), Array.from(t.data));
  assertEquals(await imageSize(path.join(dir, "a.png")), { width: 3, height: 2 });
  // a grey PNG is expanded to three equal channels
  await writeImage(path.join(dir, "g.png"), u8([1, 2], new Uint8Array([10, 200])));
  assertEquals(Array.from((await readImage(path.join(dir, "g.png"))).data), [10, 10, 10, 200, 200, 200]);
  // JPEG is lossy but close on a flat image
  await writeImage(path.join(dir, "f.jpg"), u8([8, 8, 3], new Uint8Array(192).fill(100)));
  const j = await readImage(path.join(dir, "f.jpg"));
  assert(j.data.every((v) => Math.abs(v - 100) <= 2), "flat JPEG decodes near 100");
  fs.rmSync(dir, { recursive: true });
});

Deno.test("broken image files are UserErrors naming the file", async () => {
  const b = (f: string) => path.join(FIX, "broken", f);
  await assertRejects(
    () => readImage(b("truncated.png")),
    UserError,
    `${b("truncated.png")}: cannot decode image`,
  );
  await assertRejects(
    () => readImage(b("truncated.jpg")),
    UserError,
    `${b("truncated.jpg")}: cannot decode image`,
  );
  await assertRejects(
    () => readImage(b("not_an_image.png")),
    UserError,
    `${b("not_an_image.png")}: cannot decode image`,
  );
  await assertRejects(
    () => readImage(b("missing.png")),
    UserError,
    `${b("missing.png")}: image file not found`,
  );
  assertThrows(
    () => readLabelImage(b("truncated.png")),
    UserError,
    `${b("truncated.png")}: not a readable label PNG: truncated`,
  );
  assertThrows(
    () => readLabelImage(b("not_an_image.png")),
    UserError,
    "not a readable label PNG: missing PNG signature",
  );
  assertThrows(
    () => readLabelImage(b("rgb_label.png")),
    UserError,
    `${
      b("rgb_label.png")
    }: not a readable label PNG: colour type 2 (RGB); expected single-channel grey or palette`,
  );
  // a flipped byte inside IDAT is caught by the chunk CRC
  const bytes = new Uint8Array(fs.readFileSync(path.join(FIX, "camvid/clipA/labels/0001_f10.png")));
  bytes[bytes.length - 20] ^= 0xff;
  assertThrows(
    () => decodeLabelPng(bytes, "flipped.png"),
    UserError,
    "flipped.png: not a readable label PNG: CRC mismatch",
  );
});
