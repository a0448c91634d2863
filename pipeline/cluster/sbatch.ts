/**
 * sbatch scripts of a sharded run: a job array whose task i runs `ablate --shard i/N` into the shared cache, and a
 * results job (submitted with --dependency=afterok on the array) that runs `ablate` once more without --shard,
 * computing what is left (row-scoped metrics) and writing the results. Paths are absolute: SLURM starts the
 * scripts in its own working directory, on whichever node it picks.
 * @module
 */

/** What the scripts run and where. */
export interface SbatchJob {
  /** Config name (job names, log names). */
  name: string;
  /** Absolute path of the Deno executable the compute nodes run. */
  deno: string;
  /** Repo root on the shared file system. */
  root: string;
  /** Absolute path of the CLI script (pipeline/cli/ablate.ts). */
  cli: string;
  /** Arguments after the CLI: options then the config/input (absolute paths). */
  args: string[];
  /** Number of shards. */
  shards: number;
  cache: string;
  logs: string;
  /** Threads per task (VIDSEG_THREADS). */
  threads: number;
  /** Extra environment for every task. */
  env?: Record<string, string>;
  /** Resource requests. */
  partition?: string;
  account?: string;
  time?: string;
  mem?: string;
  cpusPerTask: number;
  gpusPerTask?: number;
  /** More `#SBATCH` options, verbatim ("--qos=high"). */
  extra?: string[];
}

/** Quote a word for bash (single quotes). */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function header(job: SbatchJob, jobName: string, output: string, gpus: boolean): string[] {
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${jobName}`,
    `#SBATCH --output=${output}`,
    "#SBATCH --ntasks=1",
    `#SBATCH --cpus-per-task=${job.cpusPerTask}`,
  ];
  if (job.partition) lines.push(`#SBATCH --partition=${job.partition}`);
  if (job.account) lines.push(`#SBATCH --account=${job.account}`);
  if (job.time) lines.push(`#SBATCH --time=${job.time}`);
  if (job.mem) lines.push(`#SBATCH --mem=${job.mem}`);
  if (gpus && job.gpusPerTask) lines.push(`#SBATCH --gpus-per-task=${job.gpusPerTask}`);
  for (const e of job.extra ?? []) lines.push(`#SBATCH ${e}`);
  return lines;
}

/** `shard`: raw bash words inserted before the arguments (already quoted). */
function body(job: SbatchJob, shard: string): string[] {
  const env = {
    CI: "true",
    NO_COLOR: "1",
    VIDSEG_CACHE: job.cache,
    VIDSEG_THREADS: String(job.threads),
    ...job.env,
  };
  return [
    "set -eu",
    `cd ${shq(job.root)}`,
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shq(v)}`),
    `echo "vidseg: $(hostname) job \${SLURM_JOB_ID:-?} task \${SLURM_ARRAY_TASK_ID:-results} start $(date -u +%FT%TZ)"`,
    `exec ${[job.deno, "run", "-A", job.cli].map(shq).join(" ")}${shard} ${job.args.map(shq).join(" ")}`,
    "",
  ];
}

/** The array script: task i computes shard i of N. */
export function shardScript(job: SbatchJob): string {
  return [
    ...header(job, `vidseg-${job.name}`, `${job.logs}/shard-%A_%a.log`, true),
    "# One array task per shard: --array=0-(N-1), or the unfinished ones on --resume.",
    ...body(job, ` --shard "\${SLURM_ARRAY_TASK_ID}/${job.shards}"`),
  ].join("\n");
}

/** The results script: the unsharded run after every shard succeeded. */
export function resultsScript(job: SbatchJob): string {
  return [
    ...header(job, `vidseg-${job.name}-results`, `${job.logs}/results-%j.log`, true),
    "# Submitted with --dependency=afterok:<array job>: computes what the shards left and writes the results.",
    ...body(job, ""),
  ].join("\n");
}

/** "0-2" / "1,4-5": SLURM's --array syntax for a sorted list of indices. */
export function arraySpec(indices: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < indices.length;) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}
