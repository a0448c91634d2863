import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
} from "../../pipeline/tensor/safetensors.ts";
import { f32, floatToHalf, halfToFloat } from "../../pipeline/tensor/tensor.ts";
import { FIXTURES } from "../paths.ts";

/** The JSON header of a safetensors file, read by hand: 8-byte little-endian length, then JSON. */
function rawHeader(file: string): Record<string, { shape: number[] }> {
  const bytes = Deno.readFileSync(file);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  delete h.__metadata__;
  return h;
}

Deno.test("reads diffusers weights written by torch (conformance UNet)", () => {
  const file = `${FIXTURES}/conformance/unet/unet.safetensors`;
  const cfg = JSON.parse(Deno.readTextFileSync(`${FIXTURES}/conformance/unet/config.json`));
  const f = readSafetensors(file);
  assertEquals(f.keys().sort(), Object.keys(rawHeader(file)).sort());
  const w = f.getF32("conv_in.weight");
  const [c0, k] = [cfg.block_out_channels[0], cfg.conv_in_kernel];
  assertEquals(w.shape, [c0, cfg.in_channels, k, k]);
  assert(w.data.every(Number.isFinite));
  // Two different tensors must decode to different data at the right offsets (a view bug once decoded all from 0).
  const io = readSafetensors(`${FIXTURES}/conformance/unet_io.safetensors`);
  const batch = io.getF32("input.sample").shape[0];
  assertEquals(io.getF32("input.timestep").shape, [batch]);
  assertEquals(io.getF32("input.timestep").data.length, batch);
  const b = f.getF32("conv_in.bias");
  assertEquals(b.shape, [c0]);
  assert(b.data[0] !== w.data[0] || b.data[1] !== w.data[1]);
});

Deno.test("round-trips tensors and metadata byte-exactly", () => {
  const a = f32([2, 3], new Float32Array([1, -2, 3.5, 0, 1e-7, -0]));
  const bytes = encodeSafetensors({ b: a, a: f32([1]) }, { who: "test" });
  const back = parseSafetensors(bytes, "mem");
  assertEquals(back.keys(), ["a", "b"]);
  assertEquals([...back.getF32("b").data], [...a.data]);
  assertEquals(back.metadata.who, "test");
  assertEquals(encodeSafetensors({ b: back.get("b"), a: back.get("a") }, { who: "test" }), bytes);
});

Deno.test("refuses pickles, truncation and bad offsets with the file named", () => {
  const zip = new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0]);
  assertThrows(
    () => parseSafetensors(zip, "w.bin"),
    SafetensorsError,
    "w.bin: this is a pickled PyTorch file",
  );
  const good = encodeSafetensors({ x: f32([4]) });
  assertThrows(
    () => parseSafetensors(good.subarray(0, good.length - 3), "t.safetensors"),
    SafetensorsError,
    't.safetensors: truncated — tensor "x"',
  );
  assertThrows(
    () => readSafetensors("/nonexistent/x.safetensors"),
    SafetensorsError,
    "/nonexistent/x.safetensors: cannot read (ENOENT)",
  );
});

Deno.test("half conversion is exact on representable values and rounds to nearest even", () => {
  for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) {
    assertEquals(halfToFloat(floatToHalf(v)), v);
  }
  assertEquals(floatToHalf(1 + 2 ** -11), floatToHalf(1)); // tie → even
  assertEquals(halfToFloat(floatToHalf(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
});
