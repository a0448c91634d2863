import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertNotEquals } from "../assert.ts";
import { calls, testConfig, testStages } from "./fixtures/stages.ts";
import { quietRunner, tempDir } from "./fixtures/util.ts";
import type { RowSpec } from "../../pipeline/dag/plan.ts";
import type { Stage } from "../../pipeline/dag/stage.ts";

const snapshot = () => ({ ...calls });
const delta = (before: Record<string, number>) =>
  Object.fromEntries(
    Object.keys(calls).filter((k) => calls[k] !== (before[k] ?? 0)).map((
      k,
    ) => [k, calls[k] - (before[k] ?? 0)]),
  );

const oneRow = (config = testConfig(), units = ["u1", "u2"]): RowSpec[] => [{ name: "A", config, units }];

Deno.test("runner: first run computes every instance, second run computes none", async () => {
  const cache = tempDir();
  const before = snapshot();
  const first = quietRunner(cache);
  const s1 = await first.runner.execute(await first.runner.plan(testStages, oneRow()));
  // 2 units × 4 unit stages + 1 row aggregate
  assertEquals([s1.run, s1.cached, s1.total], [9, 0, 9]);
  assertEquals(delta(before), { source: 2, double: 2, side: 2, merge: 2, total: 1 });
  const mid = snapshot();
  const second = quietRunner(cache);
  const s2 = await second.runner.execute(await second.runner.plan(testStages, oneRow()));
  assertEquals(s2.line, "0 run, 9 cached");
  assertEquals(delta(mid), {});
  const table = second.runner.progress.summaryTable(testStages.map((s) => s.name)).split("\n");
  assertEquals(table[1].split(/\s+/).slice(0, 4), ["source", "0", "2", "0"]);
  assertEquals(table[table.length - 1].split(/\s+/).slice(0, 4), ["(all)", "0", "9", "0"]);
});

Deno.test("runner: changing one param re-runs exactly the stages that read it and their descendants", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  await r1.execute(await r1.plan(testStages, oneRow()));
  const before = snapshot();
  const r2 = quietRunner(cache).runner;
  const plan = await r2.plan(testStages, oneRow(testConfig({ kmeansK: 5 })));
  const status = r2.status(plan);
  const byStage = (st: string) =>
    [...plan.instances.values()].filter((i) => status.get(i.key) === st).map((i) => i.stage.name).sort();
  assertEquals(byStage("run"), ["double", "double", "merge", "merge", "total"]);
  assertEquals(byStage("cached"), ["side", "side", "source", "source"]);
  const s = await r2.execute(plan);
  assertEquals(s.line, "5 run, 4 cached");
  assertEquals(delta(before), { double: 2, merge: 2, total: 1 });
});

Deno.test("runner: a stage version bump invalidates it and its descendants only", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  await r1.execute(await r1.plan(testStages, oneRow()));
  const bumped = testStages.map((s) => (s.name === "side" ? { ...s, version: s.version + 1 } : s));
  const r2 = quietRunner(cache).runner;
  const s = await r2.execute(await r2.plan(bumped, oneRow()));
  assertEquals(s.line, "5 run, 4 cached"); // side×2, merge×2, total
});

Deno.test("runner: rows that need an identical instance share one computation", async () => {
  const cache = tempDir();
  const rows: RowSpec[] = [
    { name: "A", config: testConfig(), units: ["u1", "u2"] },
    { name: "B", config: testConfig({ knnK: 9 }), units: ["u1", "u2"] },
    { name: "C", config: testConfig(), units: ["u1", "u2"] }, // identical to A
  ];
  const before = snapshot();
  const { runner } = quietRunner(cache);
  const plan = await runner.plan(testStages, rows);
  // source, double shared by all; side/merge/total differ for B only.
  assertEquals(plan.instances.size, 2 + 2 + 4 + 4 + 2);
  const s = await runner.execute(plan);
  assertEquals(s.run, 14);
  assertEquals(delta(before), { source: 2, double: 2, side: 4, merge: 4, total: 2 });
  const text = runner.formatPlan(plan);
  assert(text.includes("[shared with row A]"), text);
});

Deno.test("runner: --plan text lists per row what is cached and what would run", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  await r1.execute(await r1.plan(testStages, oneRow()));
  const r2 = quietRunner(cache).runner;
  const rows: RowSpec[] = [...oneRow(), { name: "B", config: testConfig({ knnK: 4 }), units: ["u1", "u2"] }];
  const text = r2.formatPlan(await r2.plan(testStages, rows), { A: "baseline" });
  const expected = [
    "row A — baseline (2 units)",
    "  source  2 cached",
    "  double  2 cached",
    "  side    2 cached",
    "  merge   2 cached",
    "  total   1 cached",
    "row B (2 units)",
    "  source  2 cached  [shared with row A]",
    "  double  2 cached  [shared with row A]",
    "  side    2 would run",
    "  merge   2 would run",
    "  total   1 would run",
    "plan: 2 rows, 18 stage instances, 14 unique: 9 cached, 5 would run",
  ];
  assertEquals(text.split("\n"), expected);
});

Deno.test("runner: a corrupt upstream entry is reported and recomputed, never used", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  const plan1 = await r1.plan(testStages, oneRow());
  await r1.execute(plan1);
  const dbl = [...plan1.instances.values()].find((i) => i.stage.name === "double" && i.unit === "u1")!;
  const file = path.join(r1.store.entryDir("double", dbl.key), "tensors.safetensors");
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0x40; // flip a bit of the last float
  fs.writeFileSync(file, bytes);
  // Changing side's param makes merge re-run, which must read double: the corruption is detected there.
  const before = snapshot();
  const { runner, out } = quietRunner(cache);
  const s = await runner.execute(await runner.plan(testStages, oneRow(testConfig({ knnK: 7 }))));
  assertEquals(s.line, "5 run, 3 cached, 1 recomputed (corrupt)");
  assertEquals(delta(before), { double: 1, side: 2, merge: 2, total: 1 });
  assert(
    out.text.includes("corrupt cache entry (tensors.safetensors: sha256 mismatch); recomputing double A/u1"),
    out.text,
  );
  // The recomputed entry is intact and equal to a clean computation.
  const clean = quietRunner(tempDir()).runner;
  const cleanPlan = await clean.plan(testStages, oneRow());
  assertEquals(
    (await runner.load(plan1, dbl.key)).tensors.v,
    (await clean.load(cleanPlan, dbl.key)).tensors.v,
  );
});

Deno.test("runner: load() of a corrupt sink (bad manifest) recomputes it", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  const plan = await r1.plan(testStages, oneRow());
  await r1.execute(plan);
  const tot = [...plan.instances.values()].find((i) => i.stage.name === "total")!;
  const good = (await r1.load(plan, tot.key)).json;
  const mf = path.join(r1.store.entryDir("total", tot.key), "manifest.json");
  fs.writeFileSync(mf, fs.readFileSync(mf, "utf8").replace(/"wallMs": [0-9.]+/, '"wallMs": 12345'));
  const before = snapshot();
  const { runner, out } = quietRunner(cache);
  assertEquals((await runner.load(plan, tot.key)).json, good);
  assertEquals(delta(before), { total: 1 });
  assert(out.text.includes("manifest.json digest mismatch"), out.text);
});

Deno.test("runner: missing intermediate entries are not recomputed when their consumers are cached", async () => {
  const cache = tempDir();
  const r1 = quietRunner(cache).runner;
  const plan = await r1.plan(testStages, oneRow());
  await r1.execute(plan);
  fs.rmSync(path.join(cache, "side"), { recursive: true });
  const { runner } = quietRunner(cache);
  const s = await runner.execute(await runner.plan(testStages, oneRow()));
  assertEquals([s.run, s.cached, s.notNeeded], [0, 7, 2]);
  assert(runner.formatPlan(plan).includes("side    2 not needed"));
});

Deno.test("runner: keys depend on input file content, not on mtime", async () => {
  const dir = tempDir("files");
  const data = path.join(dir, "frames.bin");
  fs.writeFileSync(data, "abc");
  const reader = { ...testStages[0], inputFiles: () => [data] };
  const stages = [reader, ...testStages.slice(1)];
  const cache = tempDir();
  const r = quietRunner(cache).runner;
  const k1 = (await r.plan(stages, oneRow())).rows[0].slots[0].key;
  fs.utimesSync(data, new Date(2001, 1, 1), new Date(2001, 1, 1));
  const k2 = (await quietRunner(cache).runner.plan(stages, oneRow())).rows[0].slots[0].key;
  fs.writeFileSync(data, "abd");
  const k3 = (await quietRunner(cache).runner.plan(stages, oneRow())).rows[0].slots[0].key;
  assertEquals(k1, k2);
  assertNotEquals(k1, k3);
});

Deno.test("runner: a row stage without unit inputs is one shared instance; unit stages receive it by name", async () => {
  const prep: Stage = {
    name: "prep",
    version: 1,
    params: ["seed"],
    upstream: [],
    scope: "row",
    run: (_i, p) => Promise.resolve({ tensors: {}, json: { seen: Object.keys(p).sort() } }),
  };
  const use: Stage = {
    name: "use",
    version: 1,
    params: [],
    upstream: ["prep", "source"],
    run: (i, p) => Promise.resolve({ tensors: {}, json: { prep: i.prep.json.seen, unit: p.unit as string } }),
  };
  const { runner } = quietRunner(tempDir());
  const rows: RowSpec[] = [
    { name: "A", config: testConfig(), units: ["u1"] },
    { name: "B", config: testConfig(), units: ["u2", "u3"] },
  ];
  const plan = await runner.plan([prep, use, testStages[0]], rows);
  assertEquals([...plan.instances.values()].filter((i) => i.stage.name === "prep").length, 1);
  await runner.execute(plan);
  const u3 = plan.rows[1].slots.find((s) => s.stage === "use" && s.unit === "u3")!;
  assertEquals((await runner.load(plan, u3.key)).json, { prep: ["seed"], unit: "u3" });
});
