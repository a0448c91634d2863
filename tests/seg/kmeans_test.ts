import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import { kmeansFit, kmeansPredict } from "../../pipeline/seg/kmeans.ts";
import { createRng } from "../../pipeline/seg/rng.ts";

const F = (xs: number[]) => new Float32Array(xs);

Deno.test("kmeans on 1-D points {0, 1, 10, 11}, K=2: centres 0.5 and 10.5, inertia 4·0.25 = 1", () => {
  const m = kmeansFit(F([0, 10, 1, 11]), 4, 1, { k: 2, seed: 3 });
  const c = Array.from(m.centers).sort((a, b) => a - b);
  assertEquals(c, [0.5, 10.5]);
  assertAlmostEquals(m.inertia, 1, 1e-12);
  assertEquals(m.labels[0], m.labels[2]); // 0 and 1 together
  assertEquals(m.labels[1], m.labels[3]); // 10 and 11 together
  // predict: 4 is nearer 0.5 (3.5) than 10.5 (6.5); 6 is nearer 10.5 (4.5) than 0.5 (5.5)
  const p = kmeansPredict(m, F([4, 6]), 2);
  assertEquals(p[0], m.labels[0]);
  assertEquals(p[1], m.labels[1]);
});

Deno.test("kmeans picks the partition of least inertia among n_init runs", () => {
  // {0, 0, 9, 9, 20, 20}, K=2: {0,0,9,9 | 20,20} has inertia 4·4.5² = 81, {0,0 | 9,9,20,20} has 4·5.5² = 121
  const m = kmeansFit(F([0, 0, 9, 9, 20, 20]), 6, 1, { k: 2, nInit: 10, seed: 1 });
  assertAlmostEquals(m.inertia, 81, 1e-4); // float32 data centred on 58/6, as sklearn does
  const c = Array.from(m.centers).sort((a, b) => a - b);
  assertAlmostEquals(c[0], 4.5, 1e-5);
  assertAlmostEquals(c[1], 20, 1e-5);
});

Deno.test("kmeans is deterministic for a seed and recovers separated 2-D blobs", () => {
  const rng = createRng(5);
  const centres = [[0, 0], [10, 0], [0, 10]];
  const X = new Float32Array(300 * 2), truth: number[] = [];
  for (let i = 0; i < 300; i++) {
    const c = i % 3;
    truth.push(c);
    X[2 * i] = centres[c][0] + 0.5 * rng.normal();
    X[2 * i + 1] = centres[c][1] + 0.5 * rng.normal();
  }
  const a = kmeansFit(X, 300, 2, { k: 3, seed: 9 }), b = kmeansFit(X, 300, 2, { k: 3, seed: 9 });
  assertEquals(Array.from(a.labels), Array.from(b.labels));
  assertEquals(Array.from(a.centers), Array.from(b.centers));
  // same partition as the truth up to renaming
  const map = new Map<number, number>();
  truth.forEach((t, i) => {
    if (!map.has(t)) map.set(t, a.labels[i]);
    assertEquals(a.labels[i], map.get(t));
  });
  assertEquals(new Set(map.values()).size, 3);
});

Deno.test("kmeans with more clusters than distinct points relocates empty clusters without NaN", () => {
  // distinct values {0, 5} but K = 3: k-means++ must pick a duplicate centre; one cluster empties and is refilled
  const m = kmeansFit(F([0, 0, 0, 5, 5]), 5, 1, { k: 3, nInit: 2, seed: 1 });
  assert(Array.from(m.centers).every((v) => v === 0 || v === 5), `centres ${Array.from(m.centers)}`);
  assertEquals(m.inertia, 0);
  assertEquals(m.labels[0], m.labels[1]);
  assertEquals(m.labels[3], m.labels[4]);
});

Deno.test("kmeans stops at max_iter", () => {
  const rng = createRng(2);
  const X = Float32Array.from({ length: 200 }, () => rng.normal());
  assertEquals(kmeansFit(X, 100, 2, { k: 5, nInit: 1, maxIter: 1, seed: 4 }).nIter, 1);
});
