/**
 * On-disk cache of built graphs: `<dir>/<name>-<hash>.onnx` (+ `.onnx.data` when the weights go to an
 * external-data side file). The hash covers everything that determines the graph (config, weights
 * identity, build options, builder version). Writes are atomic: the side file is renamed into place first,
 * the .onnx last, so an existing .onnx always means a complete entry.
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../config/paths.ts";
import { GraphBuilder } from "./builder.ts";
import type { GraphOptions } from "./graph.ts";
import { tempPath, writeModel } from "./io.ts";
import { storeBytes, WeightStore } from "./weight_store.ts";

/** Bump when the graph builders change in a way that changes built graphs. */
export const BUILDER_VERSION = 2;

/** Default cache directory (overridable per call or by VIDSEG_GRAPH_CACHE). */
export function defaultGraphCacheDir(): string {
  return Deno.env.get("VIDSEG_GRAPH_CACHE") ?? path.join(REPO_ROOT, "results", "cache", "graphs");
}

/** Options of {@link cachedGraph}. */
export interface CachedGraphOptions {
  /** Readable file-name prefix, e.g. "unet". */
  name: string;
  /** Everything the graph depends on (JSON-serialisable); hashed into the file name. */
  key: unknown;
  /** Cache directory (default {@link defaultGraphCacheDir}). */
  dir?: string;
  /** Float type of the weights. */
  dtype?: "F32" | "F16";
  /** Attention kernel (see GraphOptions.attention; default "mha"). */
  attention?: "mha" | "matmul";
  /** Expected weight bytes; at or above `externalThreshold` the weights go to a side file. */
  weightBytes: number;
  /** Default 1.8e9 (protobuf messages are limited to 2 GB). 0 forces external data (tests). */
  externalThreshold?: number;
  /**
   * Share one weights store among every graph built with the same `sharedWeights` key (e.g. the weights'
   * identity): all variants of a model then hold their weights once on disk. Implies external data.
   */
  sharedWeights?: unknown;
}

/** Result: the model path (create sessions from it) and whether it was just built. */
export interface CachedGraph {
  path: string;
  built: boolean;
  external: boolean;
  buildMs: number;
  /** Bytes of .onnx (+ its own .onnx.data; a shared store is counted in `dataBytes` only). */
  bytes: number;
  /** The file holding the weights (own side file or shared store; "" when embedded). */
  dataPath: string;
  /** Bytes of `dataPath`. */
  dataBytes: number;
  /** True when `dataPath` is a store shared with other graphs. */
  shared: boolean;
  /** How the session was created (set by the loader): from the saved optimised form or not, and in how long. */
  start?: { fromOptimized: boolean; optimizedPath: string; ms: number };
}

/** Stable JSON (sorted keys) for hashing. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

function sizeOf(p: string): number {
  return fs.existsSync(p) ? fs.statSync(p).size : 0;
}

/**
 * Return the cached graph for `opts.key`, building it with `build(g)` when absent. `build` must declare
 * the graph's inputs and outputs on the given builder.
 */
export function cachedGraph(opts: CachedGraphOptions, build: (g: GraphBuilder) => void): CachedGraph {
  const dir = opts.dir ?? defaultGraphCacheDir();
  const shared = opts.sharedWeights !== undefined;
  const external = shared || opts.weightBytes >= (opts.externalThreshold ?? 1.8e9);
  const hash = graphHash(opts);
  const file = path.join(dir, `${opts.name}-${hash}.onnx`);
  const dataFile = shared ? storePath(opts) : external ? `${file}.data` : "";
  const result = (built: boolean, buildMs: number): CachedGraph => ({
    path: file,
    built,
    external,
    buildMs,
    bytes: sizeOf(file) + (shared ? 0 : sizeOf(dataFile)),
    dataPath: dataFile,
    dataBytes: dataFile ? storeBytes(dataFile) : 0,
    shared,
  });
  if (fs.existsSync(file)) return result(false, 0);
  fs.mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const gopts: GraphOptions = { name: opts.name, dtype: opts.dtype, attention: opts.attention };
  const store = shared ? WeightStore.open(dataFile) : undefined;
  if (store) {
    // Another process may have built this graph while we waited for the store.
    if (fs.existsSync(file)) {
      store.abort();
      return result(false, 0);
    }
    gopts.weightStore = { store };
  }
  const tmpData = external && !shared ? tempPath(dataFile) : "";
  // The recorded location is the final name; the side file is renamed into place before the .onnx.
  if (tmpData) gopts.externalData = { path: tmpData, location: path.basename(dataFile) };
  const g = new GraphBuilder(gopts);
  try {
    build(g);
    const model = g.toModel(`vidseg ${opts.name} ${hash}`);
    if (store) store.commit();
    if (tmpData) fs.renameSync(tmpData, dataFile);
    writeModel(model, file);
  } catch (e) {
    g.dispose();
    store?.abort();
    if (tmpData && fs.existsSync(tmpData)) fs.rmSync(tmpData, { force: true });
    throw e;
  }
  return result(true, performance.now() - t0);
}

/** The hash in a graph's file name: everything that determines the graph. */
export function graphHash(opts: CachedGraphOptions): string {
  const shared = opts.sharedWeights !== undefined;
  return shortHash({
    v: BUILDER_VERSION,
    key: opts.key,
    dtype: opts.dtype ?? "F32",
    external: shared || opts.weightBytes >= (opts.externalThreshold ?? 1.8e9),
    attention: opts.attention ?? "mha",
    ...(shared ? { shared: true } : {}),
  });
}

/** The shared weights store of `opts.sharedWeights` (and dtype) in the cache directory. */
export function storePath(opts: CachedGraphOptions): string {
  const dir = opts.dir ?? defaultGraphCacheDir();
  return path.join(
    dir,
    `${opts.name}-weights-${shortHash({ w: opts.sharedWeights, dtype: opts.dtype ?? "F32" })}.bin`,
  );
}

function shortHash(v: unknown): string {
  return createHash("sha256").update(stableJson(v)).digest("hex").slice(0, 20);
}
