/**
 * The cached stage DAG runner. It alone touches the cache: it keys every stage instance (see plan.ts),
 * skips instances whose entry exists, computes the missing ones in topological order under an inter-process
 * lock, stores their artifacts atomically and verifies entries when it reads them (a corrupt entry is
 * reported, discarded and recomputed, never used). Artifacts stay in memory only while a pending consumer
 * still needs them.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Artifacts, Stage, StageContext } from "./stage.ts";
import { ArtifactStore, CorruptEntryError, errnoText, type StoreHooks } from "./store.ts";
import { UserError } from "../errors.ts";
import { FileIdentity } from "./files.ts";
import { acquireLock } from "./lock.ts";
import { SampleStore } from "./sample_cache.ts";
import {
  buildPlan,
  formatPlan,
  type Instance,
  type InstanceStatus,
  type Plan,
  type RowSpec,
} from "./plan.ts";
import { Progress } from "./progress.ts";

/** Runner configuration. */
export interface RunnerOptions {
  /** Cache directory (created when missing). */
  cacheDir: string;
  /** Repo root, so paths inside it enter cache keys relative to it. */
  root?: string;
  progress?: Progress;
  /** Fault injection for tests. */
  hooks?: StoreHooks;
  /** Lock poll interval (ms). */
  lockPollMs?: number;
  /** Lock lease (ms; default $VIDSEG_LOCK_LEASE or 5 min): a lock whose heartbeat is older is stale. */
  leaseMs?: number;
  signal?: AbortSignal;
}

/** Outcome of `execute`. */
export interface RunSummary {
  /** Stage instances computed. */
  run: number;
  /** Stage instances found in the cache. */
  cached: number;
  /** Cache entries found damaged and recomputed. */
  corrupt: number;
  /** Missing entries that no requested output needed. */
  notNeeded: number;
  /** Unique instances in the plan. */
  total: number;
  /** "N run, M cached" (+ corrupt). */
  line: string;
}

/** Runs plans against one cache directory. */
export class Runner {
  readonly store: ArtifactStore;
  readonly files: FileIdentity;
  readonly progress: Progress;
  /** Per-item results shared between instances (see sample_cache.ts). */
  readonly samples: SampleStore;
  readonly #opts: RunnerOptions;
  readonly #locksDir: string;
  /** Artifacts kept for consumers that have not run yet. */
  readonly #memo = new Map<string, Artifacts>();
  readonly #pending = new Map<string, number>();
  readonly #computed = new Set<string>();
  readonly #corrupt = new Set<string>();
  /** Instances `execute` counted as to run (others it computes are missing upstreams of a shard's instances). */
  readonly #planned = new Set<string>();

  constructor(opts: RunnerOptions) {
    this.#opts = opts;
    try {
      fs.mkdirSync(opts.cacheDir, { recursive: true });
    } catch (e) {
      const why = errnoText(e);
      throw new UserError(
        `cache ${opts.cacheDir}: cannot create the cache folder (${why}); expected a writable folder (--cache DIR or $VIDSEG_CACHE)`,
      );
    }
    this.store = new ArtifactStore(opts.cacheDir, opts.hooks);
    this.samples = new SampleStore(opts.cacheDir, this.store.tmpDir);
    this.files = new FileIdentity(path.join(opts.cacheDir, ".filehash"));
    this.progress = opts.progress ?? new Progress();
    this.#locksDir = path.join(opts.cacheDir, ".locks");
    fs.mkdirSync(this.#locksDir, { recursive: true });
  }

  /** Instantiate and key a stage list over rows. */
  plan(stages: readonly Stage[], rows: readonly RowSpec[]): Promise<Plan> {
    return buildPlan(stages, rows, { files: this.files, root: this.#opts.root });
  }

  /**
   * Status of every instance: "cached" if its entry exists, "run" if it is missing and needed (every
   * instance of the plan is a requested output, except missing ones whose consumers are all cached).
   */
  status(plan: Plan): Map<string, InstanceStatus> {
    const status = new Map<string, InstanceStatus>();
    const needed = new Set<string>();
    const all = [...plan.instances.values()];
    const consumers = new Map<string, Instance[]>();
    for (const inst of all) {
      for (const up of Object.values(inst.upstream)) {
        consumers.set(up, [...(consumers.get(up) ?? []), inst]);
      }
    }
    // Reverse topological order: an instance is needed when it is a sink or some consumer will run.
    for (const inst of all.reverse()) {
      const cs = consumers.get(inst.key) ?? [];
      if (!cs.length || cs.some((c) => needed.has(c.key))) {
        if (this.store.has(inst.stage.name, inst.key)) status.set(inst.key, "cached");
        else {
          status.set(inst.key, "run");
          needed.add(inst.key);
        }
      } else status.set(inst.key, this.store.has(inst.stage.name, inst.key) ? "cached" : "skip");
    }
    return status;
  }

  /** The `--plan` text. */
  formatPlan(plan: Plan, titles: Record<string, string> = {}): string {
    return formatPlan(plan, this.status(plan), titles);
  }

  /**
   * Compute every missing, needed instance of the plan; with `only`, just those among them (a shard's instances,
   * see shard.ts), plus whatever missing upstream they need.
   */
  async execute(plan: Plan, opts: { only?: ReadonlySet<string> } = {}): Promise<RunSummary> {
    this.store.sweepTemp();
    const status = this.status(plan);
    if (opts.only) {
      for (const [key, st] of status) if (st === "run" && !opts.only.has(key)) status.set(key, "skip");
    }
    const toRun = new Map<string, number>();
    this.#pending.clear();
    for (const inst of plan.instances.values()) {
      if (status.get(inst.key) !== "run") continue;
      this.#planned.add(inst.key);
      toRun.set(inst.stage.name, (toRun.get(inst.stage.name) ?? 0) + 1);
      for (const up of Object.values(inst.upstream)) this.#pending.set(up, (this.#pending.get(up) ?? 0) + 1);
    }
    this.progress.begin(toRun);
    for (const inst of plan.instances.values()) {
      if (status.get(inst.key) === "run" && !this.#computed.has(inst.key)) {
        await this.#materialise(plan, inst.key, false);
      }
    }
    this.#memo.clear();
    let cached = 0, notNeeded = 0;
    for (const inst of plan.instances.values()) {
      if (this.#computed.has(inst.key)) continue;
      if (this.store.has(inst.stage.name, inst.key)) {
        this.store.touch(inst.stage.name, inst.key); // last use, for `cache gc --older-than`
        cached++;
        this.progress.cached(inst.stage.name);
      } else notNeeded++;
    }
    const t = this.progress.totals();
    return {
      run: t.run,
      cached,
      corrupt: t.corrupt,
      notNeeded,
      total: plan.instances.size,
      line: this.progress.summaryLine(),
    };
  }

  /** Verified artifacts of an instance (computed first if missing or corrupt). */
  load(plan: Plan, key: string): Promise<Artifacts> {
    return this.#materialise(plan, key, true) as Promise<Artifacts>;
  }

  async #materialise(plan: Plan, key: string, want: boolean): Promise<Artifacts | null> {
    const mem = this.#memo.get(key);
    if (mem) return mem;
    const inst = plan.instances.get(key);
    if (!inst) throw new Error(`runner: no instance with key ${key} in this plan`);
    const label = describe(inst);
    if (this.store.has(inst.stage.name, key)) {
      if (!want) return null;
      const read = this.#tryRead(inst, label);
      if (read) {
        if ((this.#pending.get(key) ?? 0) > 0) this.#memo.set(key, read); // several consumers: verify once
        return read;
      }
    }
    // Upstream first (without holding our lock, so locks are never nested).
    const inputs: Record<string, Artifacts> = {};
    for (const [name, up] of Object.entries(inst.upstream)) {
      inputs[name] = (await this.#materialise(plan, up, true))!;
    }
    const lockFile = path.join(this.#locksDir, `${key}.lock`);
    const lock = await acquireLock(lockFile, {
      pollMs: this.#opts.lockPollMs,
      leaseMs: this.#opts.leaseMs,
      signal: this.#opts.signal,
      onLost: () => this.progress.log(`lock of ${label} was broken (lease expired); computing on, the first commit wins`),
      onWait: (h) =>
        this.progress.log(
          `waiting: ${label} is being computed by pid ${h.pid} on ${h.host} (since ${h.started})`,
        ),
    });
    let out: Artifacts;
    try {
      // Re-check under the lock: another process may have committed it while we waited or loaded inputs.
      const done = this.store.has(inst.stage.name, key) ? this.#tryRead(inst, label) : null;
      if (done) out = done;
      else {
        if (!this.#planned.has(key) && !this.#corrupt.has(key)) this.progress.addToRun(inst.stage.name);
        this.#planned.add(key);
        out = await this.#compute(inst, inputs, label);
      }
    } finally {
      lock.release();
    }
    for (const up of Object.values(inst.upstream)) {
      const left = (this.#pending.get(up) ?? 1) - 1;
      this.#pending.set(up, left);
      if (left <= 0) this.#memo.delete(up);
    }
    if ((this.#pending.get(key) ?? 0) > 0) this.#memo.set(key, out);
    return out;
  }

  /** Read a visible entry; on corruption report it, discard it and return null (caller recomputes). */
  #tryRead(inst: Instance, label: string): Artifacts | null {
    try {
      return this.store.read(inst.stage.name, inst.key).artifacts;
    } catch (e) {
      if (!(e instanceof CorruptEntryError)) throw e;
      this.progress.log(`cache: ${e.message}; recomputing ${label}`);
      this.store.discard(inst.stage.name, inst.key);
      this.#corrupt.add(inst.key);
      this.progress.addToRun(inst.stage.name);
      return null;
    }
  }

  async #compute(inst: Instance, inputs: Record<string, Artifacts>, label: string): Promise<Artifacts> {
    const info = {
      stage: inst.stage.name,
      version: inst.stage.version,
      key: inst.key,
      unit: inst.unit,
      params: inst.params,
      upstream: inst.upstream,
      wallMs: 0,
    };
    const pending = this.store.begin(info);
    const ctx: StageContext = {
      progress: (done, total, what) => this.progress.sub(done, total, what),
      log: (msg) => this.progress.log(`${label}: ${msg}`),
      signal: this.#opts.signal,
      output: (name, dtype, shape) => pending.output(name, dtype, shape),
      samples: this.samples.scope(inst.stage.name, inst.stage.version),
      upstreamKeys: { ...inst.upstream },
    };
    this.progress.start(inst.stage.name, label);
    const t0 = performance.now();
    let out: Artifacts;
    try {
      out = await inst.stage.run(inputs, inst.params, ctx);
      checkArtifacts(inst.stage.name, out);
    } catch (e) {
      pending.abort();
      throw e;
    }
    info.wallMs = performance.now() - t0;
    await pending.commit(out);
    this.#computed.add(inst.key);
    this.progress.finishRun(inst.stage.name, label, info.wallMs, this.#corrupt.has(inst.key));
    // Hand consumers the stored entry (tensors load lazily), not the stage's in-memory result: memory is then
    // bounded by what each consumer reads at a time, and streamed tensors exist only on disk anyway.
    return this.store.read(inst.stage.name, inst.key, { verify: false }).artifacts;
  }
}

/** "kmeans A/clip1" style label of an instance. */
export function describe(inst: Instance): string {
  return `${inst.stage.name} ${inst.rows[0]}${inst.unit === null ? "" : `/${inst.unit}`}`;
}

function checkArtifacts(stage: string, a: Artifacts): void {
  if (!a || typeof a !== "object" || typeof a.tensors !== "object" || typeof a.json !== "object") {
    throw new Error(
      `stage "${stage}" returned ${JSON.stringify(a)?.slice(0, 80)}; expected {tensors, json, blobs?}`,
    );
  }
}
