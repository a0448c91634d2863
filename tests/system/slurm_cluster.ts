/**
 * A single-node SLURM cluster for tests, in a temp folder: munged with a generated key on a private socket,
 * slurmctld and slurmd on free ports with a minimal slurm.conf (this host as the only node, CPUs=2,
 * proctrack/linuxproc, task/none, select/cons_tres, no accounting), all state and logs in the folder. Needs the
 * Debian packages slurm-wlm and munge (slurmctld, slurmd, sbatch, squeue, scancel, sinfo, munged, mungekey).
 * `stop()` cancels every job of this cluster and ends the three daemons it started (by their pids).
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A running test cluster. */
export interface SlurmCluster {
  dir: string;
  /** Environment for the SLURM client commands (SLURM_CONF). */
  env: Record<string, string>;
  /** The daemons' logs (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on now. */
function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const o = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")} failed (${o.code}): ${text}`);
  return text;
}

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, ms: number, logs: () => string) {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`test cluster: ${what} not ready after ${ms} ms\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Start munged, slurmctld and slurmd; resolves when the node is idle and accepts jobs. */
export async function startSlurm(): Promise<SlurmCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-slurm-"));
  fs.chmodSync(dir, 0o755);
  const host = Deno.hostname();
  const p = (f: string) => path.join(dir, f);
  for (const d of ["munge", "state", "spool"]) fs.mkdirSync(p(d), { mode: 0o700 });
  const procs: Deno.ChildProcess[] = [];
  const logs = () =>
    ["munged.log", "slurmctld.log", "slurmd.log"].map((f) =>
      fs.existsSync(p(f))
        ? `--- ${f}\n${fs.readFileSync(p(f), "utf8").split("\n").slice(-25).join("\n")}`
        : ""
    ).join("\n");
  const spawn = (cmd: string, args: string[]) =>
    procs.push(new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" }).spawn());
  const env = { SLURM_CONF: p("slurm.conf") };
  const stop = async () => {
    try {
      await run("scancel", ["--full", "--user", Deno.env.get("USER") ?? "root"], env);
    } catch { /* no controller or no jobs */ }
    for (const proc of procs.reverse()) {
      try {
        proc.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await proc.status;
      clearTimeout(t);
    }
  };
  try {
    await run("mungekey", ["--create", "--keyfile", p("munge/munge.key")]);
    fs.chmodSync(p("munge/munge.key"), 0o600);
    const socket = p("munge/munge.socket");
    spawn("munged", [
      "--foreground",
      "--force",
      `--socket=${socket}`,
      `--key-file=${p("munge/munge.key")}`,
      `--log-file=${p("munged.log")}`,
      `--pid-file=${p("munge/munged.pid")}`,
      `--seed-file=${p("munge/seed")}`,
    ]);
    await waitFor("munged", () => fs.existsSync(socket), 15_000, logs);
    const [ctld, slurmd] = [freePort(), freePort()];
    const mem = Math.min(4096, Math.floor(os.totalmem() / 2 ** 20 / 2));
    fs.writeFileSync(
      p("slurm.conf"),
      [
        "ClusterName=vidsegtest",
        `SlurmctldHost=${host}(127.0.0.1)`,
        `SlurmctldPort=${ctld}`,
        `SlurmdPort=${slurmd}`,
        "AuthType=auth/munge",
        "CredType=cred/munge",
        `AuthInfo=socket=${socket}`,
        "SlurmUser=root",
        "SlurmdUser=root",
        `StateSaveLocation=${p("state")}`,
        `SlurmdSpoolDir=${p("spool")}`,
        `SlurmctldPidFile=${p("slurmctld.pid")}`,
        `SlurmdPidFile=${p("slurmd.pid")}`,
        `SlurmctldLogFile=${p("slurmctld.log")}`,
        `SlurmdLogFile=${p("slurmd.log")}`,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/builtin",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MinJobAge=3600",
        "KillWait=5",
        `NodeName=${host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=${mem} State=UNKNOWN`,
        `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
        "",
      ].join("\n"),
    );
    spawn("slurmctld", ["-D", "-i", "-f", p("slurm.conf")]);
    spawn("slurmd", ["-D", "-f", p("slurm.conf"), "-N", host]);
    await waitFor(
      "the node",
      async () => {
        try {
          return /^(idle|mixed)/.test((await run("sinfo", ["-h", "-N", "-o", "%T"], env)).trim());
        } catch {
          return false;
        }
      },
      60_000,
      logs,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, logs, stop };
}
