/** Splitting a plan into shards: whole instances, each owned once, deterministic, balanced by expected cost. */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { testConfig, testStages } from "../dag/fixtures/stages.ts";
import { quietRunner, tempDir } from "../dag/fixtures/util.ts";
import { formatSplit, parseShard, shardKeys, shardRemaining, splitPlan } from "../../pipeline/dag/shard.ts";
import { UserError } from "../../pipeline/errors.ts";

const UNITS = ["c1", "c2", "c3", "c4", "c5"];
const FRAMES: Record<string, number> = { c1: 40, c2: 10, c3: 25, c4: 5, c5: 20 };
// Rows A and B share `source` and `side` (same seed and knn.k) and differ in `double`, `merge`; C differs everywhere.
const ROWS = [
  { name: "A", config: testConfig(), units: UNITS },
  { name: "B", config: testConfig({ kmeansK: 5 }), units: UNITS },
  { name: "C", config: testConfig({ seed: 9 }), units: UNITS },
];

async function plan() {
  const { runner } = quietRunner(tempDir("shard"));
  return { runner, plan: await runner.plan(testStages, ROWS) };
}

Deno.test("shard: parse I/N (0-based) and reject the rest with a one-line user error", () => {
  assertEquals(parseShard("0/3"), { index: 0, count: 3 });
  assertEquals(parseShard("2/3"), { index: 2, count: 3 });
  for (const bad of ["3/3", "1/0", "-1/3", "a/3", "1", "1/3/4"]) {
    const e = assertThrows(() => parseShard(bad), UserError);
    assert(e.message.startsWith(`--shard ${bad}: expected I/N with 0 ≤ I < N`), e.message);
  }
});

Deno.test("shard: every clip-scoped instance belongs to exactly one shard; row-scoped ones to the final run", async () => {
  const { plan: p } = await plan();
  const split = splitPlan(p, 4, { frames: (_r, u) => FRAMES[u] });
  const seen = new Map<string, number>();
  for (let s = 0; s < 4; s++) for (const k of shardKeys(split, s)) seen.set(k, (seen.get(k) ?? 0) + 1);
  const unitScoped = [...p.instances.values()].filter((i) => i.unit !== null).map((i) => i.key);
  assertEquals(seen.size, unitScoped.length);
  assert([...seen.values()].every((n) => n === 1), "an instance in two shards");
  assertEquals(
    new Set(split.rowScoped),
    new Set([...p.instances.values()].filter((i) => i.unit === null).map((i) => i.key)),
  );
  // 3 rows × 5 clips chains; A owns the shared `source` and `side` instances, B only its own `double` and `merge`.
  assertEquals(split.units.length, 15);
  const a1 = split.units.find((u) => u.id === "A/c1")!, b1 = split.units.find((u) => u.id === "B/c1")!;
  assertEquals([a1.keys.length, b1.keys.length], [4, 2]);
  assertEquals([a1.cost, b1.cost], [160, 80]); // frames × owned instances
});

Deno.test("shard: the split is deterministic (same plan, other runner and cache) and balanced by cost", async () => {
  const one = splitPlan((await plan()).plan, 3, { frames: (_r, u) => FRAMES[u] });
  const two = splitPlan((await plan()).plan, 3, { frames: (_r, u) => FRAMES[u] });
  assertEquals(one.shards.map((s) => s.map((u) => u.id)), two.shards.map((s) => s.map((u) => u.id)));
  // Total cost (Σ frames 100) × (4 + 2 + 4 owned instances per clip) = 1000; LPT keeps every shard within the
  // largest unit (160) of the mean.
  const total = one.costs.reduce((a, b) => a + b, 0);
  assertEquals(total, 1000);
  const mean = total / 3;
  for (const c of one.costs) assert(Math.abs(c - mean) <= 160, `shard cost ${c} far from mean ${mean}`);
  assert(Math.max(...one.costs) - Math.min(...one.costs) <= 160, `costs ${one.costs}`);
  // Stage weights change the costs (a heavy `merge` stage) but the split stays a partition.
  const weighted = splitPlan((await plan()).plan, 3, {
    frames: (_r, u) => FRAMES[u],
    weights: { merge: 10 },
  });
  assertEquals(weighted.costs.reduce((a, b) => a + b, 0), 1000 + 9 * 3 * 100);
});

Deno.test("shard: more shards than units leaves shards empty; remaining work follows the cache", async () => {
  const { runner, plan: p } = await plan();
  const split = splitPlan(p, 20);
  assertEquals(split.shards.filter((s) => s.length === 0).length, 5);
  const status = runner.status(p);
  assertEquals(shardRemaining(split, 0, status).length, split.shards[0].flatMap((u) => u.keys).length);
  await runner.execute(p, { only: shardKeys(split, 0) });
  const after = runner.status(p);
  assertEquals(shardRemaining(split, 0, after), []);
  assert(shardRemaining(split, 1, after).length > 0, "other shards untouched");
  const text = formatSplit(split, after, 0);
  assert(text.includes("→ shard 0/20:") && text.includes("0 to run"), text);
  assert(text.includes("final run (no --shard): 3 row-scoped instances (3 to run)"), text);
});

Deno.test("runner: execute with `only` computes those instances and the missing upstream they need", async () => {
  const { runner, plan: p } = await plan();
  const merge = p.rows[0].slots.find((s) => s.stage === "merge" && s.unit === "c2")!;
  const s = await runner.execute(p, { only: new Set([merge.key]) });
  // merge needs double and side, which need source: 4 instances, nothing else.
  assertEquals(s.run, 4);
  assert(runner.store.has("merge", merge.key));
  assertEquals([...runner.status(p).values()].filter((x) => x === "cached").length, 4);
});
