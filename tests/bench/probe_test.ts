/**
 * The machine probes: the MatMul model computes a·b (checked against a plain JS product), the probe reports a
 * positive throughput; RSS readings are consistent (peak ≥ current; the peak follows a large allocation; a
 * reset brings it back down where the kernel supports it).
 */
import { assert, assertAlmostEquals, assertEquals, assertGreater } from "../assert.ts";
import { matmulModel, matmulProbe } from "../../pipeline/bench/matmul.ts";
import { currentRss, mib, peakRss, resetPeakRss, RssSampler } from "../../pipeline/bench/rss.ts";
import { createSession } from "../../pipeline/backbone/runtime.ts";
import { f32 } from "../../pipeline/tensor/tensor.ts";

Deno.test("matmul probe: the graph multiplies, the probe measures", async () => {
  const n = 5;
  const a = Float32Array.from({ length: n * n }, (_, i) => (i % 7) - 3);
  const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 3) % 5) * 0.5);
  const s = await createSession({ bytes: matmulModel(n) });
  const { c } = await s.run({ a: f32([n, n], a), b: f32([n, n], b) });
  await s.release();
  assertEquals(c.shape, [n, n]);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let want = 0;
      for (let k = 0; k < n; k++) want += a[i * n + k] * b[k * n + j];
      assertAlmostEquals(c.data[i * n + j] as number, want, 1e-5);
    }
  }
  const p = await matmulProbe({ n: 128, runs: 2, threads: 1 });
  assertEquals(p.ms.length, 2);
  assertGreater(p.gflops, 0);
  assertAlmostEquals(p.gflops, (2 * 128 ** 3) / (Math.min(...p.ms) / 1000) / 1e9, 1e-9);
});

Deno.test("rss: peak ≥ current, follows an allocation, can be reset", () => {
  const p0 = peakRss();
  if (p0 === null) return; // no /proc: only the sampler applies (tested below)
  assert(p0 >= currentRss() * 0.99, "peak below current RSS");
  const reset = resetPeakRss();
  // A reset sets the peak to the current RSS (within the few pages touched between the two reads).
  if (reset) {
    assert(Math.abs(peakRss()! - currentRss()) < 2 ** 20, "reset must bring the peak to the current RSS");
  }
  const base = currentRss();
  const big = new Uint8Array(64 * 2 ** 20).fill(1); // touch 64 MiB
  const after = peakRss()!;
  assertGreater(after, base + 60 * 2 ** 20, "the peak must include the 64 MiB just touched");
  assertGreater(after, currentRss() - 1);
  const s = new RssSampler(5).start();
  big.fill(2);
  const peak = s.stop();
  assertGreater(peak, base + 60 * 2 ** 20);
  assertEquals(mib(3 * 2 ** 20), 3);
});
