/** runtime.ts: Tensor ↔ ort conversion, provider selection errors, evaluation counters. */
import { GraphBuilder } from "../../pipeline/backbone/onnx/builder.ts";
import {
  createSession,
  cudaAvailable,
  EvalCounters,
  fromOrt,
  toOrt,
} from "../../pipeline/backbone/runtime.ts";
import { UserError } from "../../pipeline/errors.ts";
import { f32 } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

Deno.test("toOrt/fromOrt keep dtype, shape and values", () => {
  const a = f32([2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
  const b = fromOrt(toOrt(a));
  assertEquals(b.dtype, "F32");
  assertEquals(b.shape, [2, 3]);
  assertEquals(Array.from(b.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  const i = fromOrt(toOrt({ dtype: "I64", shape: [2], data: BigInt64Array.of(7n, -1n) }));
  assertEquals(i.dtype, "I64");
  assertEquals(Array.from(i.data as BigInt64Array), [7n, -1n]);
  const h = fromOrt(toOrt({ dtype: "F16", shape: [1], data: Uint16Array.of(0x3c00) }));
  assertEquals(h.dtype, "F16");
  assertEquals(Array.from(h.data as Uint16Array), [0x3c00]);
});

Deno.test("session runs with dynamic batch; cuda without the provider is one UserError line", async () => {
  const g = new GraphBuilder();
  const x = g.input("x", "F32", ["b", 2]);
  g.output("y", g.mul(x, g.scalar(3)));
  const bytes = g.toBytes();
  const s = await createSession({ bytes }, { threads: 1 });
  for (const b of [1, 3]) {
    const r = await s.run({ x: f32([b, 2], new Float32Array(2 * b).fill(1)) });
    assertEquals(r.y.shape, [b, 2]);
    assertEquals((r.y.data as Float32Array)[2 * b - 1], 3);
  }
  await s.release();
  if (!cudaAvailable()) {
    const e = await assertRejects(
      () => createSession({ bytes }, { provider: "cuda" }),
      UserError,
      "backbone.provider: cuda requested but onnxruntime-node has no CUDA execution provider here; on a machine",
    );
    // One line, naming the install command that works under Deno.
    assert(
      !e.message.includes("\n") && e.message.includes("ONNXRUNTIME_NODE_INSTALL=cuda12 deno run"),
      e.message,
    );
  }
});

Deno.test("evaluation counters add samples per variant", () => {
  const c = new EvalCounters();
  c.add("full", 28);
  c.add("full", 28);
  c.add("features", 2);
  assertEquals(c.samples("full"), 56);
  assertEquals(c.snapshot().features.calls, 1);
  c.reset();
  assertEquals(c.samples("full"), 0);
});
