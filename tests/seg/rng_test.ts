import { assert, assertAlmostEquals, assertEquals, assertNotEquals } from "../assert.ts";
import { createRng } from "../../pipeline/seg/rng.ts";

Deno.test("rng: same seed → same stream, different seed → different stream", () => {
  const a = createRng(1), b = createRng(1), c = createRng(2);
  const xa = Array.from({ length: 5 }, () => a.uniform()), xb = Array.from({ length: 5 }, () => b.uniform());
  assertEquals(xa, xb);
  assertNotEquals(xa, Array.from({ length: 5 }, () => c.uniform()));
});

Deno.test("rng: uniform in [0, 1) with the right moments; int in range; normal ≈ N(0, 1)", () => {
  const r = createRng(7), n = 20000;
  let s = 0, s2 = 0, ns = 0, ns2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert(u >= 0 && u < 1);
    s += u;
    s2 += u * u;
    const k = r.int(5);
    assert(Number.isInteger(k) && k >= 0 && k < 5);
    const z = r.normal();
    ns += z;
    ns2 += z * z;
  }
  // mean 1/2, variance 1/12 (standard errors ≈ 0.002 and 0.0006)
  assertAlmostEquals(s / n, 0.5, 0.01);
  assertAlmostEquals(s2 / n - (s / n) ** 2, 1 / 12, 0.003);
  assertAlmostEquals(ns / n, 0, 0.03);
  assertAlmostEquals(ns2 / n, 1, 0.04);
});
