/**
 * GraphBuilder layers run in onnxruntime against hand-computed values and plain-loop references.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GraphBuilder } from "../../../pipeline/backbone/onnx/builder.ts";
import { writeModel } from "../../../pipeline/backbone/onnx/io.ts";
import { createSession } from "../../../pipeline/backbone/runtime.ts";
import { f32, maxAbsDiff, type Tensor } from "../../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../../assert.ts";

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

async function run1(g: GraphBuilder, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await createSession({ bytes: g.toBytes() }, { threads: 1 });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

Deno.test("conv2d: 3×3 kernel, padding 1, stride 1 and 2 — hand-computed", async () => {
  // 1 channel 3×3 input 1..9, kernel all ones, bias 0.5: each output = sum of the 3×3 neighbourhood + 0.5.
  const g = new GraphBuilder();
  const x = g.input("x", "F32", ["b", 1, 3, 3]);
  const weight = f32([1, 1, 3, 3], new Float32Array(9).fill(1));
  const bias = f32([1], Float32Array.of(0.5));
  g.output("y", g.conv2d(x, { weight, bias, padding: 1 }));
  g.output("z", g.conv2d(x, { weight, bias, padding: 1, stride: 2 }));
  const r = await run1(g, { x: f32([1, 1, 3, 3], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9])) });
  assertEquals(Array.from(r.y.data as Float32Array), [12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5]);
  assertEquals(r.z.shape, [1, 1, 2, 2]);
  assertEquals(Array.from(r.z.data as Float32Array), [12.5, 16.5, 24.5, 28.5]);
});

Deno.test("groupNorm: PyTorch semantics (groups of channels × space, biased var, per-channel affine)", async () => {
  // Hand case: 1 sample, 2 channels × 2 pixels, 1 group: values 1,2,3,4 → mean 2.5, var 1.25.
  const g = new GraphBuilder();
  const x = g.input("x", "F32", ["b", "c", "h", "w"]);
  g.output(
    "y",
    g.groupNorm(x, {
      groups: 1,
      eps: 0,
      weight: f32([2], Float32Array.of(2, 1)),
      bias: f32([2], Float32Array.of(0, 10)),
    }),
  );
  const r = await run1(g, { x: f32([1, 2, 1, 2], Float32Array.of(1, 2, 3, 4)) });
  const s = Math.sqrt(1.25);
  const want = [2 * -1.5 / s, 2 * -0.5 / s, 0.5 / s + 10, 1.5 / s + 10];
  for (let i = 0; i < 4; i++) assertLess(Math.abs((r.y.data as Float32Array)[i] - want[i]), 1e-6);

  // Random case against a plain-loop reference: B 2, C 6, 3 groups, 4×5.
  const [B, C, H, W, G, eps] = [2, 6, 4, 5, 3, 1e-5];
  const xd = rand(B * C * H * W, 1), gw = rand(C, 2), gb = rand(C, 3);
  const g2 = new GraphBuilder();
  const x2 = g2.input("x", "F32", ["b", C, "h", "w"]);
  g2.output("y", g2.groupNorm(x2, { groups: G, eps, weight: f32([C], gw), bias: f32([C], gb) }));
  const r2 = await run1(g2, { x: f32([B, C, H, W], xd) });
  const ref = new Float32Array(xd.length);
  const per = (C / G) * H * W;
  for (let b = 0; b < B; b++) {
    for (let gi = 0; gi < G; gi++) {
      const o = (b * G + gi) * per;
      let m = 0, v = 0;
      for (let i = 0; i < per; i++) m += xd[o + i];
      m /= per;
      for (let i = 0; i < per; i++) v += (xd[o + i] - m) ** 2;
      v /= per;
      for (let i = 0; i < per; i++) {
        const c = gi * (C / G) + Math.floor(i / (H * W));
        ref[o + i] = ((xd[o + i] - m) / Math.sqrt(v + eps)) * gw[c] + gb[c];
      }
    }
  }
  assertLess(maxAbsDiff(r2.y as Tensor<"F32">, f32([B, C, H, W], ref)), 1e-5);
});

for (const impl of ["mha", "matmul"] as const) {
  Deno.test(`attention (${impl}): 2 heads, hand-computed one-hot case and loop reference`, async () => {
    // Hand case: 1 head, d 2, q = [[10,0]], keys [[1,0],[0,1]] → scores 10/√2·[1,0], softmax → weights w.
    const g = new GraphBuilder({ attention: impl });
    const q = g.input("q", "F32", ["b", "n", 2]), k = g.input("k", "F32", ["b", "m", 2]);
    const v = g.input("v", "F32", ["b", "m", 2]);
    g.output("o", g.attention(q, k, v, { heads: 1, headDim: 2 }));
    const r = await run1(g, {
      q: f32([1, 1, 2], Float32Array.of(10, 0)),
      k: f32([1, 2, 2], Float32Array.of(1, 0, 0, 1)),
      v: f32([1, 2, 2], Float32Array.of(1, 2, 3, 4)),
    });
    const e = Math.exp(10 / Math.SQRT2), w0 = e / (e + 1), w1 = 1 / (e + 1);
    const o = r.o.data as Float32Array;
    assertLess(Math.abs(o[0] - (w0 * 1 + w1 * 3)), 1e-6);
    assertLess(Math.abs(o[1] - (w0 * 2 + w1 * 4)), 1e-6);

    // Random: B 2, N 5, M 7, 2 heads × d 3; head n = channels 3n..3n+2.
    const [B, N, M, Hh, d] = [2, 5, 7, 2, 3];
    const C = Hh * d;
    const qd = rand(B * N * C, 4), kd = rand(B * M * C, 5), vd = rand(B * M * C, 6);
    const g2 = new GraphBuilder({ attention: impl });
    const q2 = g2.input("q", "F32", ["b", "n", C]), k2 = g2.input("k", "F32", ["b", "m", C]);
    const v2 = g2.input("v", "F32", ["b", "m", C]);
    g2.output("o", g2.attention(q2, k2, v2, { heads: Hh, headDim: d }));
    const r2 = await run1(g2, { q: f32([B, N, C], qd), k: f32([B, M, C], kd), v: f32([B, M, C], vd) });
    const ref = new Float32Array(B * N * C);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hh; h++) {
        for (let i = 0; i < N; i++) {
          const s = new Array(M).fill(0);
          for (let j = 0; j < M; j++) {
            for (let c = 0; c < d; c++) {
              s[j] += qd[(b * N + i) * C + h * d + c] * kd[(b * M + j) * C + h * d + c];
            }
            s[j] /= Math.sqrt(d);
          }
          const mx = Math.max(...s);
          const ex = s.map((x) => Math.exp(x - mx));
          const z = ex.reduce((a, c) => a + c, 0);
          for (let c = 0; c < d; c++) {
            let acc = 0;
            for (let j = 0; j < M; j++) acc += (ex[j] / z) * vd[(b * M + j) * C + h * d + c];
            ref[(b * N + i) * C + h * d + c] = acc;
          }
        }
      }
    }
    assertLess(maxAbsDiff(r2.o as Tensor<"F32">, f32([B, N, C], ref)), 1e-6);
  });
}

Deno.test("linear, layerNorm, gelu, geglu, silu, upsample, timestep embedding", async () => {
  const g = new GraphBuilder();
  const x = g.input("x", "F32", ["b", 3]);
  // Linear weight [out 2, in 3] = [[1,2,3],[4,5,6]], bias [10, 20].
  g.output(
    "lin",
    g.linear(x, {
      weight: f32([2, 3], Float32Array.of(1, 2, 3, 4, 5, 6)),
      bias: f32([2], Float32Array.of(10, 20)),
    }),
  );
  g.output(
    "ln",
    g.layerNorm(x, {
      eps: 0,
      weight: f32([3], Float32Array.of(1, 1, 1)),
      bias: f32([3], Float32Array.of(0, 0, 1)),
    }),
  );
  g.output("gelu", g.gelu(x));
  g.output("silu", g.silu(x));
  // GEGLU with identity-like projection [out 2, in 3]: hidden = x0, gate = x1.
  g.output("geglu", g.geglu(x, { weight: f32([2, 3], Float32Array.of(1, 0, 0, 0, 1, 0)) }));
  const img = g.input("img", "F32", ["b", 1, 2, 2]);
  g.output("up", g.upsampleNearest2x(img));
  const t = g.input("t", "F32", ["b"]);
  g.output("temb", g.timestepEmbedding(t, { dim: 4, flipSinToCos: true, freqShift: 0 }));
  const r = await run1(g, {
    x: f32([1, 3], Float32Array.of(1, -1, 2)),
    img: f32([1, 1, 2, 2], Float32Array.of(1, 2, 3, 4)),
    t: f32([1], Float32Array.of(100)),
  });
  const arr = (k: string) => Array.from(r[k].data as Float32Array);
  assertEquals(arr("lin"), [1 - 2 + 6 + 10, 4 - 5 + 12 + 20]);
  const m = 2 / 3, sd = Math.sqrt(((1 - m) ** 2 + (-1 - m) ** 2 + (2 - m) ** 2) / 3);
  [(1 - m) / sd, (-1 - m) / sd, (2 - m) / sd + 1].forEach((w, i) =>
    assertLess(Math.abs(arr("ln")[i] - w), 1e-6)
  );
  // Exact GELU values: gelu(1) = 0.8413447, gelu(-1) = -0.1586553, gelu(2) = 1.9544997.
  [0.8413447, -0.1586553, 1.9544997].forEach((w, i) => assertLess(Math.abs(arr("gelu")[i] - w), 1e-6));
  [1 / (1 + Math.exp(-1)), -1 / (1 + Math.exp(1)), 2 / (1 + Math.exp(-2))]
    .forEach((w, i) => assertLess(Math.abs(arr("silu")[i] - w), 1e-6));
  assertLess(Math.abs(arr("geglu")[0] - 1 * -0.1586553), 1e-6);
  assertEquals(arr("up"), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  // dim 4, half 2: freqs [1, exp(-ln(1e4)/2) = 0.01] → [cos 100, cos 1, sin 100, sin 1].
  [Math.cos(100), Math.cos(1), Math.sin(100), Math.sin(1)]
    .forEach((w, i) => assertLess(Math.abs(arr("temb")[i] - w), 1e-5));
});

Deno.test("external data: weights in a side file, session from the file path", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-ext-"));
  try {
    const g = new GraphBuilder({
      externalData: { path: path.join(dir, "m.onnx.data"), location: "m.onnx.data", threshold: 16 },
    });
    const x = g.input("x", "F32", ["b", 4]);
    const w = f32([4, 4], Float32Array.from({ length: 16 }, (_, i) => i));
    g.output("y", g.linear(x, { weight: w, bias: f32([4], Float32Array.of(1, 1, 1, 1)) }));
    writeModel(g.toModel(), path.join(dir, "m.onnx"));
    assert(fs.statSync(path.join(dir, "m.onnx.data")).size >= 64, "side file written");
    const s = await createSession({ path: path.join(dir, "m.onnx") }, { threads: 1 });
    const r = await s.run({ x: f32([1, 4], Float32Array.of(1, 0, 0, 0)) });
    await s.release();
    assertEquals(Array.from(r.y.data as Float32Array), [1, 5, 9, 13]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
