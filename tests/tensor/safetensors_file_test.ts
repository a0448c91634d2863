import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assertEquals, assertThrows } from "../assert.ts";
import { encodeSafetensors, readSafetensors, SafetensorsError } from "../../pipeline/tensor/safetensors.ts";
import { SafetensorsReader, SafetensorsRowWriter } from "../../pipeline/tensor/safetensors_file.ts";
import { f32, i32, u8 } from "../../pipeline/tensor/tensor.ts";
import { sha256File } from "../../pipeline/dag/hash.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-stf-"));

Deno.test("safetensors reader: rows of a tensor by positioned reads equal the slices of the whole file", () => {
  const dir = tmp();
  const file = path.join(dir, "t.safetensors");
  const a = f32([4, 2, 3], Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3));
  const b = u8([5], Uint8Array.of(9, 8, 7, 6, 5));
  fs.writeFileSync(file, encodeSafetensors({ a, b, s: i32([1], Int32Array.of(-4)) }));
  const r = SafetensorsReader.open(file);
  assertEquals(r.keys().sort(), ["a", "b", "s"]);
  assertEquals(r.info("a").shape, [4, 2, 3]);
  const rows = r.rows("a", 1, 3);
  assertEquals(rows.shape, [2, 2, 3]);
  assertEquals(Array.from(rows.data as Float32Array), Array.from(a.data.subarray(6, 18)));
  assertEquals(Array.from(r.rows("b", 4, 5).data as Uint8Array), [5]);
  assertEquals(r.rows("a", 2, 2).shape, [0, 2, 3]);
  assertEquals(Array.from(r.read("s").data as Int32Array), [-4]);
  assertThrows(() => r.rows("a", 3, 5), Error, "outside [0, 4)");
  assertThrows(() => r.info("zz"), SafetensorsError, `missing tensor "zz"`);
  // Truncated file: the header check names the file.
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 4));
  assertThrows(() => SafetensorsReader.open(file), SafetensorsError, "truncated");
  fs.rmSync(dir, { recursive: true });
});

Deno.test("safetensors row writer: streamed rows make a valid file; hash and size match the bytes on disk", () => {
  const dir = tmp();
  const file = path.join(dir, "w.safetensors");
  const w = new SafetensorsRowWriter(file, "x", "I32", [5, 2], { who: "test" });
  w.append(i32([2, 2], Int32Array.of(1, 2, 3, 4)));
  w.append(i32([3, 2], Int32Array.of(5, 6, 7, 8, 9, 10)));
  const done = w.close();
  assertEquals(done.size, fs.statSync(file).size);
  assertEquals(done.sha256, sha256File(file));
  const back = readSafetensors(file); // the independent whole-file parser
  assertEquals(back.metadata, { who: "test" });
  assertEquals(Array.from(back.get("x").data as Int32Array), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // Data starts 8-byte aligned, as the format recommends.
  assertEquals(Number(new DataView(fs.readFileSync(file).buffer).getBigUint64(0, true)) % 8, 0);
  fs.rmSync(dir, { recursive: true });
});

Deno.test("safetensors row writer: wrong row shapes, too many and too few rows are refused", () => {
  const dir = tmp();
  const w = new SafetensorsRowWriter(path.join(dir, "w.safetensors"), "x", "U8", [2, 3]);
  assertThrows(() => w.append(u8([1, 4])), Error, "do not fit");
  assertThrows(() => w.append(f32([1, 3])), Error, "do not fit");
  w.append(u8([1, 3]));
  assertThrows(() => w.append(u8([2, 3])), Error, "exceed");
  assertThrows(() => w.close(), Error, "got 1 of its 2 rows");
  fs.rmSync(dir, { recursive: true });
});
