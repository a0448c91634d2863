/**
 * The stage contract (DVC/Snakemake style). A stage declares its name, a code version, the config params it
 * reads, its upstream stages and the data files it reads; its `run` is a pure function from upstream artifacts
 * + params to new artifacts. Only the runner (`pipeline/dag/runner.ts`) touches the cache or the file system
 * for artifacts: a stage never reads or writes the cache itself.
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";

/** JSON-serialisable value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * What a stage returns / receives: named tensors (stored as one safetensors file per stage instance),
 * named JSON values (stored as meta.json) and named binary blobs (e.g. PNGs; stored as files).
 */
export interface Artifacts {
  tensors: Record<string, Tensor>;
  json: Record<string, Json>;
  blobs?: Record<string, Uint8Array>;
}

/** Services the runner hands to a running stage (never the cache). */
export interface StageContext {
  /** Report progress of this stage instance: `done` of `total` work units. */
  progress(done: number, total: number, what?: string): void;
  /** A plain log line (goes to stderr through the runner's reporter). */
  log(msg: string): void;
  /** Aborted when the run is interrupted. */
  signal?: AbortSignal;
}

/** A stage definition. `P` is the slice of the config it reads. */
export interface Stage<P = Record<string, unknown>> {
  /** Unique stage name, e.g. "kmeans". */
  name: string;
  /** Bump when the code's output changes; part of the cache key. */
  version: number;
  /**
   * Dotted config key paths this stage reads (e.g. "kmeans.k"); their values go into the cache key. `run` and
   * `inputFiles` receive them as a flat record keyed by these paths (`params["kmeans.k"]`), plus `unit`
   * (unit scope) or `units` (row scope). A path may name a whole group ("sampler").
   */
  params: string[];
  /** Names of upstream stages whose artifacts `run` receives (keyed by stage name). */
  upstream: string[];
  /**
   * How the stage is instantiated (optional; default "unit"). "unit": one instance per (row, unit), e.g. per
   * clip; `params.unit` is the unit's name. "row": one instance per row over all its units (e.g. metrics over
   * all clips); a unit-scoped upstream `s` arrives as inputs[`s/<unit>`] and `params.units` lists the units
   * (also given when "units" is in `params`). A row stage without unit-scoped upstreams and without "units"
   * (e.g. preparing a model once) is shared by every row and config with equal params.
   */
  scope?: "unit" | "row";
  /**
   * What the report reads from this stage (optional). "metrics": a row-scoped stage whose json.metrics is
   * {mIoU, mVC8, mVC16 (percent), classIoU?: {name: percent|null}}. "labels": a unit-scoped stage whose
   * tensors.labels is U8/I32 [F, H, W] class ids, with json.frames (frame names) and optional json.palette.
   */
  role?: "labels" | "metrics";
  /** Data files read by this stage for the given params (their identity goes into the cache key). */
  inputFiles?(params: P): string[] | Promise<string[]>;
  /** Pure computation. */
  run(inputs: Record<string, Artifacts>, params: P, ctx: StageContext): Promise<Artifacts>;
}
