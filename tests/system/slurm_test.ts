/**
 * configs/small.yaml on a real single-node SLURM cluster (tests/system/slurm_cluster.ts): `deno task slurm
 * --shards 3` (a job array + a results job after it) gives results byte-identical to a single-process run; with
 * one array task cancelled halfway and `--resume`, the results are again identical, no cache entry is corrupt and
 * nothing finished is computed again (every instance is computed exactly once over all the logs, and every entry
 * that existed before the resume is the same entry after it).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { ROOT } from "../paths.ts";
import {
  ABLATE,
  CACHE_CLI,
  cliEnv,
  computedLines,
  diffResults,
  manifestDigests,
  resultBytes,
  runCli,
  SLURM_CLI,
  tempDir,
} from "../cluster/helpers.ts";
import { type SlurmCluster, startSlurm } from "./slurm_cluster.ts";

const SMALL = path.join(ROOT, "configs", "small.yaml");

async function squeue(cluster: SlurmCluster, args: string[]): Promise<string> {
  const o = await new Deno.Command("squeue", { args: ["-h", ...args], env: cluster.env, stdout: "piped" })
    .output();
  return new TextDecoder().decode(o.stdout).trim();
}

async function until(
  what: string,
  ok: () => Promise<boolean> | boolean,
  cluster: SlurmCluster,
  ms = 3600_000,
) {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${cluster.logs()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Job ids printed by `deno task slurm`. */
function jobIds(out: string): { array?: string; results: string } {
  const results = /submitted results job (\d+)/.exec(out)?.[1];
  if (!results) throw new Error(`no results job in:\n${out}`);
  return { array: /submitted array job (\d+)/.exec(out)?.[1], results };
}

function logText(dir: string): string {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".log")).map((f) =>
    fs.readFileSync(path.join(dir, f), "utf8")
  )
    .join("\n");
}

Deno.test({
  name:
    "slurm: small.yaml as 3 shards + results job = a single run; a cancelled task resumed computes only what is missing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = tempDir("slurm");
    const cluster = await startSlurm();
    try {
      const env = { ...cliEnv(path.join(dir, "graphs")), ...cluster.env };
      // The single-process reference runs beside the first submission (its shards leave a core idle at times).
      const singleRun = runCli(
        ABLATE,
        ["--cache", `${dir}/ref-cache`, "--results", `${dir}/ref`, SMALL],
        env,
      );

      // 1. Three shards and the results job.
      const args = (n: number) => [
        SMALL,
        "--shards",
        "3",
        "--cpus-per-task",
        "1",
        "--cache",
        `${dir}/c${n}`,
        "--results",
        `${dir}/r${n}`,
        "--logs",
        `${dir}/logs${n}`,
      ];
      const sub = await runCli(SLURM_CLI, args(1), env);
      assertEquals(sub.code, 0, sub.stderr);
      const ids = jobIds(sub.stdout);
      assert(sub.stdout.includes(`submitted array job ${ids.array}: shards 0-2 of 3`), sub.stdout);
      assert(sub.stdout.includes(`after ${ids.array}`), sub.stdout);
      await until(
        "the first submission",
        async () => !(await squeue(cluster, ["-j", `${ids.array},${ids.results}`])),
        cluster,
      );
      const single = await singleRun;
      assertEquals(single.code, 0, single.stderr);
      const total = Number(/ablate: (\d+) run, 0 cached/.exec(single.stderr)?.[1]);
      const reference = resultBytes(path.join(dir, "ref", "small"));
      assertEquals(reference.size, 2 * 14 + 1); // 14 label maps per row + metrics.csv
      const logs1 = logText(`${dir}/logs1`);
      assertEquals(diffResults(reference, resultBytes(path.join(dir, "r1", "small"))), "", logs1);
      for (const i of [0, 1, 2]) assert(logs1.includes(`ablate: shard ${i}/3: `), logs1);
      assertEquals(computedLines(logs1).length, total, logs1);
      assertEquals(new Set(computedLines(logs1)).size, total);

      // 2. The same with the costliest shard (0) cancelled after it finished an instance, then --resume.
      const sub2 = await runCli(SLURM_CLI, args(2), env);
      assertEquals(sub2.code, 0, sub2.stderr);
      const ids2 = jobIds(sub2.stdout);
      const log0 = () => {
        const f = `${dir}/logs2/shard-${ids2.array}_0.log`;
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
      };
      await until("shard 0's first finished instance", () => computedLines(log0()).length > 0, cluster);
      assert(
        !log0().includes("ablate: shard 0/3:"),
        `shard 0 finished before it could be cancelled:\n${log0()}`,
      );
      const cancel = await new Deno.Command("scancel", { args: [`${ids2.array}_0`], env: cluster.env })
        .output();
      assert(cancel.success, "scancel failed");
      await until(
        "the other array tasks",
        async () => !(await squeue(cluster, ["-r", "-j", ids2.array!])),
        cluster,
      );
      assert(
        await squeue(cluster, ["-j", ids2.results]),
        "the results job should still wait (its dependency failed)",
      );
      assert(!fs.existsSync(`${dir}/r2/small/metrics.csv`), "results written although a shard was cancelled");
      const before = manifestDigests(`${dir}/c2`);
      assert(before.size > 0 && before.size < total, `entries before the resume: ${before.size} of ${total}`);
      const verify1 = await runCli(CACHE_CLI, ["verify", "--cache", `${dir}/c2`], env);
      assertEquals(verify1.code, 0, verify1.stdout);

      const resume = await runCli(SLURM_CLI, [...args(2), "--resume"], env);
      assertEquals(resume.code, 0, resume.stderr);
      assert(resume.stdout.includes(`cancelled the previous results job ${ids2.results}`), resume.stdout);
      const ids3 = jobIds(resume.stdout);
      assert(resume.stdout.includes(`submitted array job ${ids3.array}: shards 0 of 3`), resume.stdout);
      await until(
        "the resumed shard and results",
        async () => !(await squeue(cluster, ["-j", `${ids3.array},${ids3.results}`])),
        cluster,
      );
      const logs2 = logText(`${dir}/logs2`);
      assertEquals(diffResults(reference, resultBytes(path.join(dir, "r2", "small"))), "", logs2);
      // Every instance computed exactly once over the cancelled task, the others, the resumed task and results.
      assertEquals(computedLines(logs2).length, total, logs2);
      assertEquals(new Set(computedLines(logs2)).size, total);
      const after = manifestDigests(`${dir}/c2`);
      for (const [entry, digest] of before) assertEquals(after.get(entry), digest, `${entry} was rewritten`);
      const verify2 = await runCli(CACHE_CLI, ["verify", "--cache", `${dir}/c2`], env);
      assertEquals(verify2.code, 0, verify2.stdout);
      assert(verify2.stdout.includes(`${total} entries, 0 corrupt`), verify2.stdout);
    } finally {
      await cluster.stop();
      fs.rmSync(cluster.dir, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
