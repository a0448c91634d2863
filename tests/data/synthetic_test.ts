import { assert, assertEquals, assertGreater, assertLess } from "../assert.ts";
import {
  syntheticFeatures,
  syntheticModulationPairs,
  syntheticVideo,
} from "../../pipeline/data/synthetic.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";

const N = 12, H = 64, W = 96;
const v = syntheticVideo({ frames: N, height: H, width: W, seed: 3 });
const count = (f: number, cls: number) =>
  v.gt.data.subarray(f * H * W, (f + 1) * H * W).filter((c) => c === cls).length;
const centroidX = (f: number, cls: number) => {
  let s = 0, n = 0;
  for (let i = 0; i < H * W; i++) if (v.gt.data[f * H * W + i] === cls) (s += i % W), n++;
  return s / n;
};

Deno.test("synthetic video: shapes, determinism, every class present", () => {
  assertEquals(v.frames.shape, [N, H, W, 3]);
  assertEquals(v.gt.shape, [N, H, W]);
  const again = syntheticVideo({ frames: N, height: H, width: W, seed: 3 });
  assertEquals(again.frames.data, v.frames.data);
  assertEquals(again.gt.data, v.gt.data);
  assert(
    syntheticVideo({ frames: 2, height: H, width: W, seed: 4 }).frames.data.some((x, i) =>
      x !== v.frames.data[i]
    ),
    "seed matters",
  );
  for (const c of [0, 1, 2, 3]) assertGreater(count(0, c), 50, `class ${c} in frame 0`);
  assertEquals(new Set(v.gt.data).size, 4);
});

Deno.test("synthetic video: the car moves right, the person grows, then the car occludes it", () => {
  assertGreater(centroidX(N - 1, 2) - centroidX(0, 2), 3); // car drifts right (0.004·W per frame)
  // 48×64, 40 frames: the person's visible area grows 1 %/frame in radius (frame 0 → 20: ~111 → ~158 pixels),
  // then the car (moving right) passes in front of it and the visible area drops by more than 10 %
  const long = syntheticVideo({ frames: 40, height: 48, width: 64, seed: 3 });
  const area = Array.from(
    { length: 40 },
    (_, f) => long.gt.data.subarray(f * 48 * 64, (f + 1) * 48 * 64).filter((c) => c === 3).length,
  );
  assertGreater(area[20], area[0] * 1.2);
  const peak = Math.max(...area.slice(0, 30));
  assertLess(Math.min(...area.slice(area.indexOf(peak))), peak * 0.9);
});

Deno.test("synthetic features: same class closer than other classes; appearance persists over frames", () => {
  const f = syntheticFeatures(v, {
    gridH: 4,
    gridW: 6,
    channels: 16,
    noise: 0,
    classWeight: 1,
    appearanceWeight: 0.5,
  });
  assertEquals(f.shape, [N, 24, 16]);
  const cell = (t: number, c: number) => f.data.subarray((t * 24 + c) * 16, (t * 24 + c + 1) * 16);
  const dist = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
  // top-left cells are sky, bottom-left road (horizon at ≈ 0.42–0.48·H): sky–sky < sky–road
  assertLess(dist(cell(0, 0), cell(0, 1)), dist(cell(0, 0), cell(0, 18)));
  // appearance only (no class part, no noise): a sky cell resembles itself one frame later (the pan is 0.5 px)
  // more than its sky neighbour
  const a = syntheticFeatures(v, {
    gridH: 4,
    gridW: 6,
    channels: 16,
    noise: 0,
    classWeight: 0,
    appearanceWeight: 1,
  });
  const at = (t: number, c: number) => a.data.subarray((t * 24 + c) * 16, (t * 24 + c + 1) * 16);
  assertLess(dist(at(0, 1), at(1, 1)), dist(at(0, 1), at(1, 2)));
  // noise makes repeated calls differ only through noiseSeed
  const g1 = syntheticFeatures(v, { gridH: 4, gridW: 6, noiseSeed: 1 }),
    g2 = syntheticFeatures(v, { gridH: 4, gridW: 6, noiseSeed: 1 });
  assertEquals(g1.data, g2.data);
});

Deno.test("simulated modulation pairs stay within the exact uint8 range and follow the coarse labels", () => {
  const frame = u8([H, W, 3], v.frames.data.subarray(0, H * W * 3)),
    gt = u8([H, W], v.gt.data.subarray(0, H * W));
  const grid = { h: 4, w: 6 };
  const gtGrid = Uint8Array.from(
    { length: 24 },
    (_, c) => gt.data[(Math.floor(c / 6) * 16 + 8) * W + (c % 6) * 16 + 8],
  );
  const pairs = syntheticModulationPairs(frame, gt, gtGrid, gtGrid, grid, [0, 1, 2, 3]);
  for (const p of pairs) {
    for (let i = 0; i < p.plus.data.length; i++) assert(Math.abs(p.plus.data[i] - p.minus.data[i]) <= 10);
  }
  // a sky pixel (top-left corner) responds to the sky label (0) only
  const d = pairs.map((p) => p.plus.data[0] - p.minus.data[0]);
  assertGreater(d[0], 0);
  assertEquals(d.slice(1), [0, 0, 0]);
});
