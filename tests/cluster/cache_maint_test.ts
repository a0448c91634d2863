/** `deno task cache verify|gc` on a cache shared by hosts: hashes checked, orphans removed, live work kept. */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { testConfig, testStages } from "../dag/fixtures/stages.ts";
import { quietRunner, tempDir } from "../dag/fixtures/util.ts";
import { gcCache, listEntries, verifyCache } from "../../pipeline/dag/maintain.ts";
import { CACHE_CLI, runCli } from "./helpers.ts";

function age(p: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(p, t, t);
}

async function filledCache(): Promise<string> {
  const cache = tempDir("maint");
  const { runner } = quietRunner(cache);
  await runner.execute(
    await runner.plan(testStages, [{ name: "A", config: testConfig(), units: ["u1", "u2"] }]),
  );
  return cache;
}

Deno.test("cache verify: every entry's hashes; a damaged entry is reported (exit 1) and left for gc", async () => {
  const cache = await filledCache();
  const entries = listEntries(cache);
  assertEquals(entries.length, 9); // 4 clip stages × 2 clips + 1 row stage
  assertEquals(verifyCache(cache).corrupt, []);
  const ok = await runCli(CACHE_CLI, ["verify", "--cache", cache], { NO_COLOR: "1" });
  assertEquals([ok.code, ok.stdout.trim().split("\n").pop()], [
    0,
    `cache verify ${cache}: 9 entries, 0 corrupt; 0 samples, 0 corrupt`,
  ]);
  // Flip one byte of a tensor file (same size: only the hash can tell).
  const [stage, key] = entries.find(([s]) => s === "double")!;
  const file = path.join(cache, stage, key, "tensors.safetensors");
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const bad = await runCli(CACHE_CLI, ["verify", "--cache", cache], { NO_COLOR: "1" });
  assertEquals(bad.code, 1, bad.stdout + bad.stderr);
  assert(bad.stdout.includes(`corrupt: double/${key}: tensors.safetensors: sha256 mismatch`), bad.stdout);
  assert(fs.existsSync(file), "verify changes nothing");
});

Deno.test("cache gc: removes dead writers' temp folders, expired locks and broken entries; keeps live ones", async () => {
  const cache = await filledCache();
  const tmp = path.join(cache, ".tmp"), locks = path.join(cache, ".locks");
  fs.mkdirSync(tmp, { recursive: true });
  // A writer on another host, silent for two days (its node died) vs. one writing right now.
  fs.mkdirSync(path.join(tmp, "77~node-3~modulate~abc~x1"));
  fs.writeFileSync(path.join(tmp, "77~node-3~modulate~abc~x1", "tensors.safetensors"), "partial");
  age(path.join(tmp, "77~node-3~modulate~abc~x1", "tensors.safetensors"), 2 * 86400_000);
  age(path.join(tmp, "77~node-3~modulate~abc~x1"), 2 * 86400_000);
  fs.mkdirSync(path.join(tmp, "78~node-4~modulate~def~x2"));
  // A dead node's lock (heartbeat an hour old) vs. a live holder's on another host.
  const lock = (name: string, host: string, ms: number) => {
    const f = path.join(locks, name);
    fs.writeFileSync(f, JSON.stringify({ pid: 9, host, started: "", procStart: null, nonce: name }));
    age(f, ms);
  };
  lock("a.lock", "node-3", 3600_000);
  lock("b.lock", "node-4", 1_000);
  // A truncated entry.
  const [stage, key] = listEntries(cache).find(([s]) => s === "side")!;
  fs.truncateSync(path.join(cache, stage, key, "tensors.safetensors"), 10);

  const dry = gcCache(cache, { leaseMs: 300_000, dryRun: true });
  assertEquals(dry.temp, [".tmp/77~node-3~modulate~abc~x1"]);
  assert(fs.existsSync(path.join(tmp, "77~node-3~modulate~abc~x1")), "dry run removes nothing");
  const r = gcCache(cache, { leaseMs: 300_000 });
  assertEquals(r.temp, [".tmp/77~node-3~modulate~abc~x1"]);
  assertEquals(r.locks, [".locks/a.lock"]);
  assertEquals(r.corrupt, [`side/${key}`]);
  assertEquals(fs.readdirSync(tmp), ["78~node-4~modulate~def~x2"]);
  assertEquals(fs.readdirSync(locks), ["b.lock"]);
  assertEquals(listEntries(cache).length, 8);

  // --older-than: entries no run used for longer go; a run touches what it uses.
  const [s2, k2] = listEntries(cache).find(([s]) => s === "merge")!;
  age(path.join(cache, s2, k2), 40 * 86400_000);
  const cli = await runCli(CACHE_CLI, ["gc", "--cache", cache, "--older-than", "30d"], { NO_COLOR: "1" });
  assertEquals(cli.code, 0, cli.stderr);
  assert(cli.stdout.includes(`removed: merge/${k2}`), cli.stdout);
  assert(cli.stdout.includes("1 entries and 0 samples unused for 30d"), cli.stdout);
  assertEquals(listEntries(cache).length, 7);
  const bad = await runCli(CACHE_CLI, ["gc", "--cache", cache, "--older-than", "soon"], { NO_COLOR: "1" });
  assertEquals([bad.code, bad.stderr.trim()], [
    2,
    "error: --older-than soon: expected a duration such as 30d, 12h, 90m or 45s",
  ]);
});
