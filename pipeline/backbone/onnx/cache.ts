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
}

/** Result: the model path (create sessions from it) and whether it was just built. */
export interface CachedGraph {
  path: string;
  built: boolean;
  external: boolean;
  buildMs: number;
  /** Bytes of .onnx (+ .onnx.data). */
  bytes: number;
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
  const external = opts.weightBytes >= (opts.externalThreshold ?? 1.8e9);
  const hash = createHash("sha256")
    .update(
      stableJson({
        v: BUILDER_VERSION,
        key: opts.key,
        dtype: opts.dtype ?? "F32",
        external,
        attention: opts.attention ?? "mha",
      }),
    )
    .digest("hex").slice(0, 20);
  const file = path.join(dir, `${opts.name}-${hash}.onnx`);
  const dataName = `${path.basename(file)}.data`;
  const dataFile = path.join(dir, dataName);
  if (fs.existsSync(file)) {
    return { path: file, built: false, external, buildMs: 0, bytes: sizeOf(file) + sizeOf(dataFile) };
  }
  fs.mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const tmpData = external ? tempPath(dataFile) : "";
  const gopts: GraphOptions = { name: opts.name, dtype: opts.dtype, attention: opts.attention };
  // The recorded location is the final name; the side file is renamed into place before the .onnx.
  if (external) gopts.externalData = { path: tmpData, location: dataName };
  const g = new GraphBuilder(gopts);
  try {
    build(g);
    const model = g.toModel(`vidseg ${opts.name} ${hash}`);
    if (external) fs.renameSync(tmpData, dataFile);
    writeModel(model, file);
  } catch (e) {
    g.dispose();
    if (external && fs.existsSync(tmpData)) fs.rmSync(tmpData, { force: true });
    throw e;
  }
  return {
    path: file,
    built: true,
    external,
    buildMs: performance.now() - t0,
    bytes: sizeOf(file) + sizeOf(dataFile),
  };
}
