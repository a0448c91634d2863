/**
 * Sharded runs without a scheduler: three `ablate --shard i/3` processes on one cache at once, then one run without
 * --shard, give results byte-identical to a single process; every instance is computed exactly once; `--plan`
 * shows the split; the cache verifies clean and `cache gc` finds nothing to remove.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  ABLATE,
  CACHE_CLI,
  cliEnv,
  clusterSetup,
  computedLines,
  diffResults,
  resultBytes,
  runCli,
} from "./helpers.ts";

Deno.test({
  name:
    "sharded ablate: 3 concurrent shards + the final run = a single run, byte for byte; nothing computed twice",
  sanitizeResources: false,
  fn: async () => {
    const { dir, config } = clusterSetup("shards");
    const env = cliEnv(path.join(dir, "graphs"));
    const single = await runCli(ABLATE, ["--cache", `${dir}/c1`, "--results", `${dir}/r1`, config], env);
    assertEquals(single.code, 0, single.stderr);
    const total = Number(/ablate: (\d+) run, 0 cached/.exec(single.stderr)?.[1]);
    assert(total > 0, single.stderr);

    const plan = await runCli(ABLATE, ["--plan", "--shard", "1/3", "--cache", `${dir}/c2`, config], env);
    assertEquals(plan.code, 0, plan.stderr);
    const shardLines = plan.stdout.split("\n").filter((l) => / shard \d\/3: cost /.test(l));
    assertEquals(shardLines.length, 3, plan.stdout);
    assert(shardLines[1].startsWith("→ shard 1/3"), plan.stdout);
    assert(plan.stdout.includes("final run (no --shard): 2 row-scoped instances (2 to run)"), plan.stdout);
    // 6 (row, clip) chains over 3 shards: each shard gets two.
    for (const l of shardLines) assertEquals(l.split(" — ")[1].split(", ").length, 2, l);

    const shards = await Promise.all(
      [0, 1, 2].map((i) =>
        runCli(ABLATE, ["--shard", `${i}/3`, "--cache", `${dir}/c2`, "--results", `${dir}/r2`, config], env)
      ),
    );
    const computed: string[] = [];
    shards.forEach((r, i) => {
      assertEquals(r.code, 0, r.stderr);
      assert(r.stderr.includes(`ablate: shard ${i}/3: `), r.stderr);
      computed.push(...computedLines(r.stderr));
    });
    assert(!fs.existsSync(`${dir}/r2`), "a shard wrote results");
    const final = await runCli(ABLATE, ["--cache", `${dir}/c2`, "--results", `${dir}/r2`, config], env);
    assertEquals(final.code, 0, final.stderr);
    assert(final.stderr.includes(`ablate: 2 run, ${total - 2} cached`), final.stderr); // the two evaluate instances
    computed.push(...computedLines(final.stderr));
    assertEquals(computed.length, total, `computed: ${computed.join("; ")}`);
    assertEquals(new Set(computed).size, total);

    const a = resultBytes(path.join(dir, "r1", "tiny")), b = resultBytes(path.join(dir, "r2", "tiny"));
    assert(a.size >= 9 * 2 + 1, `results: ${[...a.keys()].join(", ")}`); // 9 label maps per row + metrics.csv
    assertEquals(diffResults(a, b), "");

    const verify = await runCli(CACHE_CLI, ["verify", "--cache", `${dir}/c2`], env);
    assertEquals(verify.code, 0, verify.stdout + verify.stderr);
    assert(verify.stdout.includes(`${total} entries, 0 corrupt`), verify.stdout);
    const gc = await runCli(CACHE_CLI, ["gc", "--cache", `${dir}/c2`], env);
    assertEquals(gc.code, 0, gc.stderr);
    assert(gc.stdout.includes("removed 0 temporary, 0 expired locks, 0 corrupt entries"), gc.stdout);
    fs.rmSync(dir, { recursive: true, force: true });
  },
});
