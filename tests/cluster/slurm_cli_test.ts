/** `deno task slurm --dry-run`: the scripts it would submit, and its input checks (no SLURM needed). */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { arraySpec, shq } from "../../pipeline/cluster/sbatch.ts";
import { ABLATE, cliEnv, clusterSetup, runCli, SLURM_CLI } from "./helpers.ts";

Deno.test("slurm: --array specs and shell quoting", () => {
  assertEquals(arraySpec([0, 1, 2]), "0-2");
  assertEquals(arraySpec([1, 4, 5, 7]), "1,4-5,7");
  assertEquals(shq("/a/b.yaml"), "/a/b.yaml");
  assertEquals(shq("it's here"), `'it'\\''s here'`);
});

Deno.test("slurm --dry-run: an array of shard tasks and a results job, valid bash, the split per shard", async () => {
  const { dir, config } = clusterSetup("sbatch");
  const env = cliEnv(path.join(dir, "graphs"));
  const r = await runCli(SLURM_CLI, [
    config, "--shards", "3", "--partition", "gpu", "--gpus-per-task", "1", "--time", "2:00:00", "--mem", "16G",
    "--sbatch-arg=--qos=high", "--cache", `${dir}/shared cache`, "--logs", `${dir}/logs`, "--dry-run",
  ], env);
  assertEquals(r.code, 0, r.stderr);
  const [, shards, results] = r.stdout.split(/^# .*\.sbatch$/m);
  for (const line of ["#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1", "#SBATCH --time=2:00:00", "#SBATCH --mem=16G", "#SBATCH --qos=high", `#SBATCH --output=${dir}/logs/shard-%A_%a.log`]) {
    assert(shards.includes(line), `${line} missing:\n${shards}`);
  }
  assert(shards.includes(`export VIDSEG_CACHE='${dir}/shared cache'`), shards);
  assert(shards.includes(`${ABLATE} --shard "\${SLURM_ARRAY_TASK_ID}/3" --cache '${dir}/shared cache'`), shards);
  assert(results.includes(`#SBATCH --output=${dir}/logs/results-%j.log`) && !results.includes("--shard"), results);
  assert(r.stdout.includes(`# sbatch --parsable --array=0-2 ${dir}/logs/shards.sbatch`), r.stdout);
  assert(r.stdout.includes("# sbatch --parsable --dependency=afterok:<array job>"), r.stdout);
  // 6 (row, clip) chains; every instance but the two row-scoped ones is in some shard.
  const left = /# instances to run per shard: (\d+), (\d+), (\d+)/.exec(r.stdout)!.slice(1).map(Number);
  const plan = await runCli(ABLATE, ["--plan", "--cache", `${dir}/c`, config], env);
  const unique = Number(/, (\d+) unique: 0 cached, \d+ would run/.exec(plan.stdout)![1]);
  assertEquals(left.reduce((a, b) => a + b, 0), unique - 2);
  assert(!fs.existsSync(`${dir}/logs`), "a dry run writes nothing");
  for (const script of [shards, results]) {
    const f = path.join(dir, "check.sh");
    fs.writeFileSync(f, script.trim() + "\n");
    const o = await new Deno.Command("bash", { args: ["-n", f], stderr: "piped" }).output();
    assert(o.success, new TextDecoder().decode(o.stderr));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

Deno.test("slurm and --shard: bad input is one error line, exit 2, nothing written", async () => {
  const { dir, config } = clusterSetup("sbatch-bad");
  const env = cliEnv(path.join(dir, "graphs"));
  const cases: [string, string[], string][] = [
    [SLURM_CLI, [config, "--dry-run"], "error: --shards N is required"],
    [SLURM_CLI, [config, "--shards", "0", "--dry-run"], "error: --shards 0: expected a positive integer"],
    [SLURM_CLI, [config, "--resume", "--logs", `${dir}/none`], `error: --resume: ${dir}/none/submitted.json: no readable submission record`],
    [SLURM_CLI, [config, "--shards", "2", "--set", "kmeans.k=1", "--dry-run"], "error: "],
    [ABLATE, ["--shard", "3/3", "--cache", `${dir}/c`, config], "error: --shard 3/3: expected I/N with 0 ≤ I < N"],
  ];
  for (const [cli, args, want] of cases) {
    const r = await runCli(cli, args, env);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith(want), `${lines[0]} (wanted ${want})`);
  }
  assert(!fs.existsSync(`${dir}/c`) && !fs.existsSync(`${dir}/none`), "nothing written");
  fs.rmSync(dir, { recursive: true, force: true });
});
