/**
 * The stage contract (DVC/Snakemake style). A stage declares its name, a code version, the config params it
 * reads, its upstream stages and the data files it reads; its `run` is a pure function from upstream artifacts
 * + params to new artifacts. Only the runner (`pipeline/dag/runner.ts`) touches the cache or the file system
 * for artifacts: a stage never reads or writes the cache itself.
 * @module
 */
import { type DType, numel, type Tensor, type TypedArrayOf } from "../tensor/tensor.ts";
import type { SampleCache } from "./sample_cache.ts";

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
  /**
   * Set on artifacts read from the cache, whose tensors load lazily from disk: rows [start, end) of a tensor along
   * its first axis, read without loading the rest (use {@link rowsOf}).
   */
  readRows?(name: string, start: number, end: number): Tensor;
  /** Set on artifacts read from the cache: dtype and shape of a tensor without loading it (use {@link shapeOf}). */
  tensorInfo?(name: string): { dtype: DType; shape: number[] } | undefined;
}

/** Rows of a streamed output tensor, appended in order (see {@link StageContext.output}). */
export interface TensorSink {
  append(rows: Tensor): void;
}

/** Services the runner hands to a running stage (never the cache). */
export interface StageContext {
  /** Report progress of this stage instance: `done` of `total` work units. */
  progress(done: number, total: number, what?: string): void;
  /** A plain log line (goes to stderr through the runner's reporter). */
  log(msg: string): void;
  /** Aborted when the run is interrupted. */
  signal?: AbortSignal;
  /**
   * Stream an output tensor of known dtype and shape to the runner, rows in order, instead of returning it whole
   * (the runner writes it into the pending cache entry; a long video never sits in memory). Absent outside the
   * runner: use {@link tensorOutput}, which falls back to an in-memory tensor.
   */
  output?(name: string, dtype: DType, shape: readonly number[]): TensorSink;
  /**
   * Results of single work items shared between instances (the runner's {@link SampleCache}, scoped to this
   * stage and code version). A stage keys an item by everything it depends on — {@link upstreamKeys}, params,
   * the item's own inputs — never by the instance. Absent outside the runner: compute everything.
   */
  samples?: SampleCache;
  /** Cache keys of this instance's upstream entries, by upstream stage name (the identity of each input). */
  upstreamKeys?: Record<string, string>;
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

/** Rows [start, end) (first axis) of tensor `name` of an artifact, loading only those rows when it is lazy. */
export function rowsOf(a: Artifacts, name: string, start: number, end: number): Tensor {
  if (a.readRows && a.tensorInfo?.(name)) return a.readRows(name, start, end);
  const t = a.tensors[name];
  if (!t) throw new Error(`artifact has no tensor "${name}" (has: ${Object.keys(a.tensors).join(", ")})`);
  const inner = numel(t.shape.slice(1));
  return {
    dtype: t.dtype,
    shape: [end - start, ...t.shape.slice(1)],
    data: (t.data as Float32Array).subarray(start * inner, end * inner),
  } as Tensor;
}

/** dtype and shape of tensor `name` of an artifact without loading it (undefined when absent). */
export function shapeOf(a: Artifacts, name: string): { dtype: DType; shape: number[] } | undefined {
  if (a.tensorInfo) return a.tensorInfo(name);
  const t = a.tensors[name];
  return t ? { dtype: t.dtype, shape: [...t.shape] } : undefined;
}

/** A streamed output: appended rows go to the runner, or (outside a runner) into an in-memory tensor. */
export interface TensorOutput<D extends DType> extends TensorSink {
  /** What the stage adds to its returned `tensors`: {} when streamed, {name: tensor} in memory. */
  result(): Record<string, Tensor>;
  readonly dtype: D;
  readonly shape: readonly number[];
}

/** Open an output tensor of known shape for row-by-row writing (see {@link StageContext.output}). */
export function tensorOutput<D extends DType>(
  ctx: StageContext,
  name: string,
  dtype: D,
  shape: readonly number[],
): TensorOutput<D> {
  const sink = ctx.output?.(name, dtype, shape);
  if (sink) return { dtype, shape, append: (t) => sink.append(t), result: () => ({}) };
  const Ctor = { F32: Float32Array, F16: Uint16Array, I32: Int32Array, U8: Uint8Array, I64: BigInt64Array }[dtype];
  const data = new Ctor(numel(shape)) as TypedArrayOf<D>;
  const inner = numel(shape.slice(1));
  let rows = 0;
  return {
    dtype,
    shape,
    append(t) {
      (data as Float32Array).set(t.data as Float32Array, rows * inner);
      rows += t.shape[0];
    },
    result() {
      if (rows !== shape[0]) throw new Error(`output "${name}": ${rows} of ${shape[0]} rows written`);
      return { [name]: { dtype, shape: [...shape], data } as Tensor };
    },
  };
}

/** A plain copy of artifacts with every lazy tensor loaded (for comparisons and serialisation). */
export function materialize(a: Artifacts): Artifacts {
  const out: Artifacts = { tensors: { ...a.tensors }, json: a.json };
  if (a.blobs) out.blobs = a.blobs;
  return out;
}
