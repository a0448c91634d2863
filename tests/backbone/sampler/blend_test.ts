import { assertEquals, assertThrows } from "../../assert.ts";
import { blendLatents, upsampleMask2x } from "../../../pipeline/backbone/sampler/blend.ts";
import { f32, u8 } from "../../../pipeline/tensor/tensor.ts";

Deno.test("mask ×2 nearest upsampling: out[y][x] = in[y>>1][x>>1]", () => {
  const m = u8([1, 2, 3], new Uint8Array([1, 0, 1, 0, 1, 0]));
  const up = upsampleMask2x(m);
  assertEquals(up.shape, [1, 4, 6]);
  assertEquals([...up.data], [
    1,
    1,
    0,
    0,
    1,
    1,
    1,
    1,
    0,
    0,
    1,
    1,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
  ]);
});

Deno.test("blend: inside the mask keep x, outside restore x_orig, per frame, all channels", () => {
  // 2 frames, 2 channels, latent 2×2 ← mask 1×1 per frame (frame 0 on, frame 1 off)
  const x = f32([2, 2, 2, 2], new Float32Array(16).map((_, i) => i));
  const orig = f32([2, 2, 2, 2], new Float32Array(16).fill(-1));
  const mask = f32([2, 1, 1], new Float32Array([1, 0]));
  const out = blendLatents(x, orig, mask);
  assertEquals([...out.data], [0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1]);
  // a soft weight mixes: 0.25·x + 0.75·orig
  const soft = blendLatents(x, orig, f32([2, 1, 1], new Float32Array([0.25, 0.25])));
  assertEquals(soft.data[5], 0.25 * 5 - 0.75);
  // 1×2 mask on a 2×4 latent: left half from x, right half from orig
  const x2 = f32([1, 1, 2, 4], new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
  const o2 = f32([1, 1, 2, 4], new Float32Array(8));
  assertEquals([...blendLatents(x2, o2, u8([1, 1, 2], new Uint8Array([1, 0]))).data], [
    1,
    2,
    0,
    0,
    5,
    6,
    0,
    0,
  ]);
  assertThrows(() => blendLatents(x2, o2, u8([1, 2, 2])), Error, "does not upsample");
});
