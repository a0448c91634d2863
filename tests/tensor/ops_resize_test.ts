// Resampling family of pipeline/tensor/ops.ts (nearest, Pillow bicubic/Lanczos, OpenCV bilinear); the other ops
// are tested in ops_test.ts.
import { assertEquals } from "../assert.ts";
import {
  resizeBicubicPil,
  resizeBilinearCv,
  resizeLanczosPil,
  resizeNearest,
} from "../../pipeline/tensor/ops.ts";
import { i32, u8 } from "../../pipeline/tensor/tensor.ts";

Deno.test("resizeNearest follows Pillow (incl. its accumulated position: 360 → 22 rows)", () => {
  // Pillow 9.4 `Image.fromarray(np.arange(360).reshape(360,1), "I").resize((1, 22), NEAREST)`; note row 5 is 89,
  // not ⌊5.5·360/22⌋ = 90: Pillow adds the scale up step by step and 5.5·16.36… lands just below 90.
  const col = i32([360, 1], Int32Array.from({ length: 360 }, (_, i) => i));
  // deno-fmt-ignore
  assertEquals(Array.from(resizeNearest(col, 22, 1).data), [
    8, 24, 40, 57, 73, 89, 106, 122, 139, 155, 171, 188, 204, 220, 237, 253, 270, 286, 302, 319, 335, 351,
  ]);
  // upsampling 3 → 7: src = ⌊(d + 0.5)·3/7⌋ = 0,0,1,1,1,2,2 (Pillow gives the same)
  // deno-fmt-ignore
  assertEquals(Array.from(resizeNearest(u8([1, 3], new Uint8Array([0, 1, 2])), 1, 7).data), [
    0, 0, 1, 1, 1, 2, 2,
  ]);
  // 480 → 30 columns: scale 16 exactly, src = 8 + 16·d
  const row = u8([1, 480], Uint8Array.from({ length: 480 }, (_, i) => i % 256));
  assertEquals(Array.from(resizeNearest(row, 1, 30).data).slice(0, 4), [8, 24, 40, 56]);
});

// 5×7 RGB test image: value (y·37 + x·11 + c·71 + ((x·y) mod 5)·40) mod 256
const H = 5, W = 7;
const img = u8(
  [H, W, 3],
  Uint8Array.from({ length: H * W * 3 }, (_, i) => {
    const c = i % 3, x = Math.floor(i / 3) % W, y = Math.floor(i / 3 / W);
    return (y * 37 + x * 11 + c * 71 + ((x * y) % 5) * 40) % 256;
  }),
);

Deno.test("resizeBicubicPil matches Pillow 9.4 BICUBIC byte for byte", () => {
  // references: `np.array(Image.fromarray(img, "RGB").resize((w, h), Image.BICUBIC)).ravel()` with Pillow 9.4.0
  // deno-fmt-ignore
  const down = [
    22, 101, 170, 75, 113, 125, 110, 86, 165, 87, 159, 171, 117, 162, 172, 113, 155, 83, 196, 109, 97, 153,
    140, 91, 141, 160, 145, 73, 131, 151, 167, 69, 124, 139, 133, 74,
  ];
  assertEquals(Array.from(resizeBicubicPil(img, 3, 4).data), down);
  // width kept (horizontal pass skipped), height 5 → 3
  // deno-fmt-ignore
  const vert = [
    13, 84, 155, 38, 117, 188, 70, 141, 105, 103, 59, 130, 126, 91, 162, 68, 139, 218, 101, 172, 129, 74,
    145, 226, 175, 182, 105, 75, 146, 91, 143, 151, 73, 245, 51, 122, 129, 210, 69, 166, 89, 106, 135, 206,
    127, 142, 99, 170, 93, 164, 128, 18, 97, 168, 233, 48, 119, 190, 111, 68, 83, 154, 83,
  ];
  assertEquals(Array.from(resizeBicubicPil(img, 3, 7).data), vert);
  // upsampling to 11×8
  // deno-fmt-ignore
  const up = [
    0, 68, 139, 0, 71, 141, 6, 77, 149, 11, 81, 168, 17, 94, 178, 22, 111, 182, 26, 117, 188, 35, 121, 191,
    51, 123, 193, 58, 128, 210, 61, 132, 223, 11, 82, 152, 21, 92, 175, 41, 112, 189, 66, 145, 122, 84, 117,
    107, 97, 54, 138, 119, 72, 152, 111, 104, 181, 70, 135, 223, 79, 163, 174, 95, 179, 128, 35, 106, 178,
    59, 130, 210, 97, 170, 215, 124, 214, 69, 157, 144, 24, 193, 10, 71, 242, 24, 101, 214, 82, 158, 101,
    157, 229, 118, 196, 115, 152, 213, 13, 57, 127, 213, 100, 180, 159, 137, 227, 93, 46, 128, 111, 65, 117,
    82, 171, 164, 30, 236, 82, 92, 219, 78, 118, 121, 184, 76, 167, 132, 70, 222, 73, 73, 78, 155, 247, 140,
    174, 158, 192, 186, 53, 74, 124, 108, 51, 145, 111, 118, 208, 74, 208, 95, 113, 222, 84, 97, 145, 217, 9,
    155, 124, 78, 176, 27, 147, 99, 188, 255, 169, 121, 205, 245, 67, 114, 199, 205, 61, 119, 219, 99, 53,
    124, 185, 175, 56, 154, 235, 92, 97, 173, 236, 48, 91, 173, 125, 37, 97, 195, 135, 214, 115, 138, 156,
    149, 135, 95, 178, 112, 154, 136, 59, 149, 139, 17, 88, 172, 161, 54, 142, 242, 57, 106, 198, 101, 79,
    123, 142, 76, 71, 166, 80, 158, 227, 5, 110, 190, 100, 45, 134, 217, 28, 104, 198, 5, 85, 170, 2, 73,
    144, 157, 58, 127, 245, 30, 113, 211, 0, 97, 157, 112, 32, 118, 208, 0,
  ];
  assertEquals(Array.from(resizeBicubicPil(img, 8, 11).data), up);
});

Deno.test("resizeLanczosPil matches Pillow 9.4 LANCZOS on a 0/255 mask", () => {
  const m = u8([3, 4], new Uint8Array([0, 255, 255, 0, 0, 255, 0, 0, 255, 255, 0, 0]));
  // `Image.fromarray(m, "L").resize((13, 9), Image.LANCZOS)` (ringing clipped to 0..255)
  // deno-fmt-ignore
  const ref = [
    11, 11, 57, 129, 220, 255, 255, 255, 255, 153, 59, 0, 0, 0, 0, 51, 131, 223, 255, 255, 255, 223, 131, 51,
    0, 0, 0, 0, 40, 132, 227, 255, 234, 203, 165, 97, 38, 1, 3, 0, 0, 36, 140, 234, 253, 202, 128, 81, 48,
    19, 1, 8, 0, 0, 68, 165, 243, 246, 164, 52, 0, 0, 0, 2, 12, 89, 92, 138, 203, 250, 234, 138, 19, 0, 0, 0,
    2, 14, 179, 187, 207, 234, 254, 223, 130, 25, 0, 0, 0, 2, 13, 243, 253, 255, 255, 255, 216, 128, 39, 0,
    0, 0, 2, 12, 255, 255, 255, 255, 255, 211, 126, 46, 10, 6, 2, 2, 11,
  ];
  assertEquals(Array.from(resizeLanczosPil(m, 9, 13).data), ref);
  assertEquals(Array.from(resizeLanczosPil(m, 2, 2).data), [133, 114, 193, 16]);
});

Deno.test("resizeBilinearCv: half-pixel centres, clamped borders, 11-bit weights, round half up", () => {
  // 1×2 → 1×3, scale 2/3: dx=0 → fx = 0.5·⅔ − 0.5 < 0 → clamp to p0; dx=1 → fx = 0.5 → (10+21)/2 = 15.5 → 16;
  // dx=2 → sx = 1 = W−1 → p1
  assertEquals(Array.from(resizeBilinearCv(u8([1, 2], new Uint8Array([10, 21])), 1, 3).data), [10, 16, 21]);
  // 2×1 → 4×1, scale ½: fy = −0.25 (rows −1→0 and 0), 0.25, 0.75, 1.25 (rows 1 and 2→1):
  // [0, 0.75·0 + 0.25·100, 0.25·0 + 0.75·100, 100] = [0, 25, 75, 100]
  // deno-fmt-ignore
  assertEquals(Array.from(resizeBilinearCv(u8([2, 1], new Uint8Array([0, 100])), 4, 1).data), [
    0, 25, 75, 100,
  ]);
  // 0.5 rounds up: (0·1024 + 1·1024) → 1·2048·1024 + 2²¹ >> 22 = 1  ⇒ mean of 0 and 1 in the middle column
  assertEquals(Array.from(resizeBilinearCv(u8([1, 2], new Uint8Array([0, 1])), 1, 3).data), [0, 1, 1]);
  // exact 2× downscale is INTER_AREA: (1+2+3+5+2)>>2 = 13>>2 = 3
  assertEquals(Array.from(resizeBilinearCv(u8([2, 2], new Uint8Array([1, 2, 3, 5])), 1, 1).data), [3]);
  // RGB channels are independent
  const rgb = resizeBilinearCv(u8([1, 2, 3], new Uint8Array([10, 0, 200, 21, 100, 0])), 1, 3).data;
  assertEquals(Array.from(rgb), [10, 0, 200, 16, 50, 100, 21, 100, 0]);
});
