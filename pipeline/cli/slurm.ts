/**
 * `deno task slurm CONFIG --shards N [--partition P] [--gpus-per-task G] [--time T] … [--dry-run | --resume]`
 *
 * Runs an ablation on a SLURM cluster through the shared cache: writes two sbatch scripts into the log folder and
 * submits a job array of N shard tasks (`ablate --shard i/N`) and a results job that depends on it
 * (`--dependency=afterok`), which runs `ablate` once more without --shard (what is left, then the results). The
 * cache must be on storage every node sees. `--dry-run` prints the scripts and submits nothing. `--resume`, after
 * a task failed or was cancelled, resubmits only the unfinished shards — a shard is finished when the plan says
 * none of its instances is missing from the cache — and a new results job; shards still queued or running are
 * left alone (the new results job waits for them too) and the old results job, whose dependency can no longer
 * be met, is cancelled.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { loadConfig } from "../config/load.ts";
import { arraySpec, resultsScript, type SbatchJob, shardScript } from "../cluster/sbatch.ts";
import { helpText, type OptionSpec, parseArgs, userCwd, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE =
  "deno task slurm CONFIG --shards N [--partition P] [--gpus-per-task G] [--time T] [--dry-run | --resume]";
const OPTIONS: Record<string, OptionSpec> = {
  shards: { type: "string", value: "N", doc: "number of shard tasks in the job array" },
  partition: { type: "string", value: "P", doc: "SLURM partition" },
  account: { type: "string", value: "A", doc: "SLURM account" },
  "gpus-per-task": {
    type: "string",
    value: "G",
    doc: "GPUs per task (also add --set backbone.provider=cuda)",
  },
  "cpus-per-task": {
    type: "string",
    value: "C",
    doc: "CPU cores per task (default 2); VIDSEG_THREADS follows",
  },
  mem: { type: "string", value: "M", doc: "memory per task, e.g. 16G" },
  time: { type: "string", value: "T", doc: "time limit per task, e.g. 4:00:00" },
  "sbatch-arg": { type: "list", value: "ARG", doc: "extra #SBATCH option, e.g. --qos=high; repeatable" },
  cache: {
    type: "string",
    value: "DIR",
    doc: "shared cache directory (default $VIDSEG_CACHE or results/cache)",
  },
  results: { type: "string", value: "DIR", doc: "results root (default $VIDSEG_RESULTS or results/)" },
  logs: {
    type: "string",
    value: "DIR",
    doc: "scripts, logs and submission record (default results/slurm/<config>)",
  },
  set: { type: "list", value: "KEY=VALUE", doc: "config override passed to every task; repeatable" },
  rows: { type: "string", value: "A,B", doc: "run only these rows" },
  "dry-run": { type: "boolean", doc: "print the scripts and the split, submit nothing" },
  resume: { type: "boolean", doc: "resubmit only the unfinished shards and a new results job" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

const ABLATE = path.join(REPO_ROOT, "pipeline", "cli", "ablate.ts");

/** What a submission recorded (`<logs>/submitted.json`), for --resume. */
interface Submission {
  config: string;
  shards: number;
  /** Array jobs and the shard indices each ran. */
  arrays: { job: string; indices: number[] }[];
  results: string;
  /** The options of the submission (paths absolute), reused by --resume. */
  options: string[];
}

/** Command-line options to record: resolved paths, no --resume / --dry-run. */
function recordOptions(options: Record<string, unknown>, resolved: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries({ ...options, ...resolved })) {
    if (k === "resume" || k === "dry-run" || k === "help" || v === undefined || v === false) continue;
    if (Array.isArray(v)) { for (const x of v) out.push(`--${k}=${x}`); }
    else out.push(v === true ? `--${k}` : `--${k}=${v}`);
  }
  return out;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let o: Deno.CommandOutput;
  try {
    o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", env: { NO_COLOR: "1" } })
      .output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `${cmd}: not found; run on a SLURM login node (or use --dry-run to see the scripts)`,
      );
    }
    throw e;
  }
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Submit a script; returns the job id. */
async function sbatch(args: string[]): Promise<string> {
  const r = await run("sbatch", ["--parsable", ...args]);
  if (r.code !== 0) {
    throw new UserError(`sbatch ${args.join(" ")}: ${r.err.trim().split("\n")[0] || `exit ${r.code}`}`);
  }
  return r.out.trim().split(";")[0];
}

/** Array tasks of `job` still queued or running ("123_4" ids → index). */
async function activeTasks(job: string): Promise<Map<number, string>> {
  const r = await run("squeue", ["-h", "-r", "-j", job, "-o", "%i|%T"]);
  const out = new Map<number, string>();
  if (r.code !== 0) return out; // the job left the queue (squeue: invalid job id)
  for (const line of r.out.split("\n")) {
    const m = /^(\d+)_(\d+)\|(\w+)/.exec(line.trim());
    if (m && !["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].includes(m[3])) {
      out.set(Number(m[2]), `${m[1]}_${m[2]}`);
    }
  }
  return out;
}

/** Instances left per shard, from `ablate --plan --shard 0/N` (which also validates the config). */
async function remainingPerShard(deno: string, ablateArgs: string[], shards: number): Promise<number[]> {
  const r = await run(deno, ["run", "-A", ABLATE, "--plan", "--shard", `0/${shards}`, ...ablateArgs]);
  if (r.code === 2) throw new UserError(r.err.trim().split("\n").pop()!.replace(/^error: /, ""));
  if (r.code !== 0) throw new Error(`ablate --plan failed (exit ${r.code}):\n${r.err}`);
  const left = new Array<number>(shards).fill(-1);
  for (const m of r.out.matchAll(/shard (\d+)\/\d+: .*?, \d+ instances: (\d+) to run/g)) {
    left[Number(m[1])] = Number(m[2]);
  }
  if (left.includes(-1)) throw new Error(`ablate --plan printed no split for every shard:\n${r.out}`);
  return left;
}

function positiveInt(v: unknown, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${option} ${v}: expected a positive integer`);
  return n;
}

/** The slurm command; returns the exit code. */
export async function slurm(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS, "CONFIG is an ablation config such as configs/table2.yaml."));
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`expected exactly one CONFIG file (usage: ${USAGE})`);
  if (options.resume && options["dry-run"]) throw new UserError("--resume and --dry-run cannot be combined");
  const logsFor = (name: string) =>
    userPath((options.logs as string | undefined) ?? path.join(REPO_ROOT, "results", "slurm", name));
  let previous: Submission | null = null;
  if (options.resume) {
    // The submission's own options (absolute paths), unless given again now.
    const name = loadConfig(positionals[0], { set: options.set as string[], cwd: userCwd() }).name;
    previous = readSubmission(path.join(logsFor(name), "submitted.json"));
    const recorded = parseArgs(previous.options, OPTIONS).options;
    for (const [k, v] of Object.entries(options)) {
      if (v === undefined || v === false || (Array.isArray(v) && !v.length)) options[k] = recorded[k];
    }
  }
  const config = loadConfig(positionals[0], { set: options.set as string[], cwd: userCwd() });
  const cache = userPath(
    (options.cache as string | undefined) ?? Deno.env.get("VIDSEG_CACHE") ??
      path.join(REPO_ROOT, "results", "cache"),
  );
  const results = userPath(
    (options.results as string | undefined) ?? Deno.env.get("VIDSEG_RESULTS") ??
      path.join(REPO_ROOT, "results"),
  );
  const logs = logsFor(config.name);
  const record = path.join(logs, "submitted.json");
  let shards = positiveInt(options.shards, "--shards");
  if (previous) {
    if (shards !== undefined && shards !== previous.shards) {
      throw new UserError(`--shards ${shards}: the submission in ${record} has ${previous.shards} shards`);
    }
    shards = previous.shards;
  }
  if (shards === undefined) throw new UserError(`--shards N is required (usage: ${USAGE})`);
  const cpus = positiveInt(options["cpus-per-task"], "--cpus-per-task") ?? 2;
  const ablateArgs = [
    "--cache",
    cache,
    "--results",
    results,
    ...(options.set as string[]).flatMap((s) => ["--set", s]),
    ...(options.rows ? ["--rows", String(options.rows)] : []),
    path.resolve(userCwd(), positionals[0]),
  ];
  const job: SbatchJob = {
    name: config.name,
    deno: Deno.execPath(),
    root: REPO_ROOT,
    cli: ABLATE,
    args: ablateArgs,
    shards,
    cache,
    logs,
    threads: cpus,
    partition: options.partition as string | undefined,
    account: options.account as string | undefined,
    time: options.time as string | undefined,
    mem: options.mem as string | undefined,
    cpusPerTask: cpus,
    gpusPerTask: positiveInt(options["gpus-per-task"], "--gpus-per-task"),
    extra: options["sbatch-arg"] as string[],
  };
  const left = await remainingPerShard(job.deno, ablateArgs, shards);
  const shardFile = path.join(logs, "shards.sbatch"), resultsFile = path.join(logs, "results.sbatch");
  if (options["dry-run"]) {
    console.log(`# ${shardFile}\n${shardScript(job)}\n# ${resultsFile}\n${resultsScript(job)}`);
    console.log(`# sbatch --parsable --array=${arraySpec(range(shards))} ${shardFile}`);
    console.log(`# sbatch --parsable --dependency=afterok:<array job> ${resultsFile}`);
    console.log(`# instances to run per shard: ${left.join(", ")}`);
    return 0;
  }
  fs.mkdirSync(logs, { recursive: true });
  fs.writeFileSync(shardFile, shardScript(job));
  fs.writeFileSync(resultsFile, resultsScript(job));
  let todo = range(shards);
  const waitFor: string[] = [];
  const arrays = previous ? [...previous.arrays] : [];
  if (previous) {
    // Tasks still queued or running are not resubmitted; the new results job waits for them as well.
    const active = new Map<number, string>();
    for (const a of previous.arrays) for (const [i, id] of await activeTasks(a.job)) active.set(i, id);
    todo = todo.filter((i) => left[i] > 0 && !active.has(i));
    waitFor.push(...active.values());
    if ((await run("squeue", ["-h", "-j", previous.results, "-o", "%i"])).out.trim()) {
      await run("scancel", [previous.results]);
      console.log(
        `cancelled the previous results job ${previous.results} (its dependency can no longer be met)`,
      );
    }
    const finished = range(shards).filter((i) => left[i] === 0);
    console.log(
      `finished shards: ${finished.length ? finished.join(", ") : "none"}; still running: ${
        active.size ? [...active.keys()].join(", ") : "none"
      }`,
    );
  }
  if (todo.length) {
    const id = await sbatch([`--array=${arraySpec(todo)}`, shardFile]);
    arrays.push({ job: id, indices: todo });
    waitFor.unshift(id);
    console.log(
      `submitted array job ${id}: shards ${arraySpec(todo)} of ${shards} (logs ${logs}/shard-${id}_<i>.log)`,
    );
  } else console.log("no shard to (re)submit");
  const resultsJob = await sbatch([
    ...(waitFor.length ? [`--dependency=afterok:${waitFor.join(":")}`] : []),
    resultsFile,
  ]);
  console.log(
    `submitted results job ${resultsJob}${
      waitFor.length ? ` after ${waitFor.join(", ")}` : ""
    } (log ${logs}/results-${resultsJob}.log)` +
      ` → ${path.join(results, config.name)}/`,
  );
  const sub: Submission = {
    config: path.resolve(userCwd(), positionals[0]),
    shards,
    arrays,
    results: resultsJob,
    options: recordOptions(options, { shards: String(shards), cache, results, logs }),
  };
  fs.writeFileSync(record, JSON.stringify(sub, null, 1) + "\n");
  console.log(`record: ${record} (after a failed task: deno task slurm ${positionals[0]} --resume)`);
  return 0;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function readSubmission(file: string): Submission {
  try {
    const s = JSON.parse(fs.readFileSync(file, "utf8")) as Submission;
    if (
      Number.isInteger(s.shards) && Array.isArray(s.arrays) && typeof s.results === "string" &&
      Array.isArray(s.options)
    ) {
      return s;
    }
  } catch { /* reported below */ }
  throw new UserError(`--resume: ${file}: no readable submission record (submit without --resume first)`);
}

if (import.meta.main) await runMain(slurm);
