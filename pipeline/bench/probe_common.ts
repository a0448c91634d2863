/**
 * Command-line options and graph facts shared by the hand-run UNet benchmarks (`sd_unet.ts` for SD,
 * `svd_unet.ts` for SVD).
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CachedGraph } from "../backbone/onnx/cache.ts";

/** The value after `--name` on the command line, or `def`. */
export function benchArg(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : def;
}

/** Options every UNet benchmark takes. */
export interface BenchOptions {
  /** `--config` (model size to build). */
  which: string;
  /** `--dtype` fp32 | fp16. */
  dtype: "fp32" | "fp16";
  /** `--cache-dir` (default: `<tmp>/<cacheName>`). */
  cacheDir: string;
  /** False with `--no-run` (build and load only). */
  run: boolean;
}

/** Parse the common options (`defaultConfig` when `--config` is absent). */
export function benchOptions(defaultConfig: string, cacheName: string): BenchOptions {
  return {
    which: benchArg("config", defaultConfig),
    dtype: benchArg("dtype", "fp32") as "fp32" | "fp16",
    cacheDir: benchArg("cache-dir", path.join(os.tmpdir(), cacheName)),
    run: !Deno.args.includes("--no-run"),
  };
}

/** Build facts of a variant's graph for the JSON report: built now or cached, build time, sizes, threads. */
export function graphFacts(graph: CachedGraph): Record<string, unknown> {
  return {
    built: graph.built,
    buildMs: Math.round(graph.buildMs),
    external: graph.external,
    graphBytes: graph.bytes,
    onnxBytes: fs.statSync(graph.path).size,
    threads: navigator.hardwareConcurrency,
  };
}
