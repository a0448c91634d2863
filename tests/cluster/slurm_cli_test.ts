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
    config,
    "--shards",
    "3",
    "--partition",
    "gpu",
    "--gpus-per-task",
    "1",
    "--time",
    "2:00:00",
    "--mem",
    "16G",
    "--sbatch-arg=--qos=high",
    "--cache",
    `${dir}/shared cache`,
    "--logs",
    `${dir}/logs`,
    "--dry-run",
  ], env);
  assertEquals(r.code, 0, r.stderr);
  const [, shards, results] = r.stdout.split(/^# .*\.sbatch$/m);
  for (
    const line of [
      "#SBATCH --partition=gpu",
      "#SBATCH --gpus-per-task=1",
      "#SBATCH --time=2:00:00",
      "#SBATCH --mem=16G",
      "#SBATCH --qos=high",
      `#SBATCH --output=${dir}/logs/shard-%A_%a.log`,
    ]
  ) {
    assert(shards.includes(line), `${line} missing:\n${shards}`);
  }
  assert(shards.includes(`export VIDSEG_CACHE='${dir}/shared cache'`), shards);
  assert(
    shards.includes(`${ABLATE} --shard "\${SLURM_ARRAY_TASK_ID}/3" --cache '${dir}/shared cache'`),
    shards,
  );
  assert(
    results.includes(`#SBATCH --output=${dir}/logs/results-%j.log`) && !results.includes("--shard"),
    results,
  );
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
    [
      SLURM_CLI,
      [config, "--resume", "--logs", `${dir}/none`],
      `error: --resume: ${dir}/none/submitted.json: no readable submission record`,
    ],
    [SLURM_CLI, [config, "--shards", "2", "--set", "kmeans.k=1", "--dry-run"], "error: "],
    [
      ABLATE,
      ["--shard", "3/3", "--cache", `${dir}/c`, config],
      "error: --shard 3/3: expected I/N with 0 ≤ I < N",
    ],
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

/** sbatch/squeue/scancel stand-ins: log their arguments, number jobs from 100, print a queue from a file. */
function fakeSlurm(
  dir: string,
): { env: Record<string, string>; calls: () => string[]; queue: (lines: string) => void } {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const log = path.join(dir, "calls"), counter = path.join(dir, "next"), queue = path.join(dir, "queue");
  fs.writeFileSync(counter, "100");
  const script = (body: string) => `#!/bin/bash\necho "$(basename "$0") $*" >> ${shq(log)}\n${body}\n`;
  fs.writeFileSync(
    path.join(bin, "sbatch"),
    script(`n=$(cat ${shq(counter)}); echo $((n+1)) > ${shq(counter)}; echo "$n"`),
  );
  fs.writeFileSync(
    path.join(bin, "squeue"),
    script(
      `while [ $# -gt 0 ]; do [ "$1" = -j ] && id=$2; shift; done\n` +
        `[ -f ${shq(queue)} ] && grep "^$id " ${shq(queue)} | sed 's/^[^ ]* //' || true`,
    ),
  );
  fs.writeFileSync(path.join(bin, "scancel"), script(""));
  for (const f of fs.readdirSync(bin)) fs.chmodSync(path.join(bin, f), 0o755);
  return {
    env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
    calls: () => fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [],
    queue: (lines) => fs.writeFileSync(queue, lines),
  };
}

Deno.test("slurm: submit, then --resume with one task still running: the rest resubmitted, results job replaced", async () => {
  const { dir, config } = clusterSetup("fake-slurm");
  const fake = fakeSlurm(dir);
  const env = { ...cliEnv(path.join(dir, "graphs")), ...fake.env };
  const logs = `${dir}/logs`;
  const sub = await runCli(SLURM_CLI, [
    config,
    "--shards",
    "3",
    "--partition",
    "cpu",
    "--cache",
    `${dir}/c`,
    "--logs",
    logs,
  ], env);
  assertEquals(sub.code, 0, sub.stderr);
  assertEquals(fake.calls(), [
    `sbatch --parsable --array=0-2 ${logs}/shards.sbatch`,
    `sbatch --parsable --dependency=afterok:100 ${logs}/results.sbatch`,
  ]);
  assert(
    sub.stdout.includes(`submitted array job 100: shards 0-2 of 3 (logs ${logs}/shard-100_<i>.log)`),
    sub.stdout,
  );
  assert(
    sub.stdout.includes(`submitted results job 101 after 100 (log ${logs}/results-101.log)`),
    sub.stdout,
  );
  assert(fs.readFileSync(`${logs}/shards.sbatch`, "utf8").includes("#SBATCH --partition=cpu"));

  // Task 1 still runs, tasks 0 and 2 failed (nothing cached); the results job waits forever.
  fake.queue("100 100_1|RUNNING\n101 101\n");
  fs.rmSync(`${logs}/shards.sbatch`);
  // --resume without the original options: they come from the record.
  const res = await runCli(SLURM_CLI, [config, "--resume", "--logs", logs], env);
  assertEquals(res.code, 0, res.stderr);
  assertEquals(fake.calls().slice(2).filter((c) => !c.startsWith("squeue")), [
    "scancel 101",
    `sbatch --parsable --array=0,2 ${logs}/shards.sbatch`,
    `sbatch --parsable --dependency=afterok:102:100_1 ${logs}/results.sbatch`,
  ]);
  assert(res.stdout.includes("finished shards: none; still running: 1"), res.stdout);
  const script = fs.readFileSync(`${logs}/shards.sbatch`, "utf8");
  assert(script.includes("#SBATCH --partition=cpu") && script.includes(`--cache ${dir}/c`), script);
  const record = JSON.parse(fs.readFileSync(`${logs}/submitted.json`, "utf8"));
  assertEquals(record.arrays, [{ job: "100", indices: [0, 1, 2] }, { job: "102", indices: [0, 2] }]);
  assertEquals(record.results, "103");
  fs.rmSync(dir, { recursive: true, force: true });
});
