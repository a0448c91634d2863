/**
 * The process-wide pool of loaded models: sessions are expensive, so every stage instance of a run shares them.
 * The pool only memoises model loading; it holds no results, so stages stay pure.
 * @module
 */
import * as path from "node:path";

const pool = new Map<string, Promise<unknown>>();

/** Memoise a model load in the process-wide pool under `key` (a failed load is forgotten). */
export function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
  let p = pool.get(key) as Promise<T> | undefined;
  if (!p) {
    p = make();
    pool.set(key, p);
    p.catch(() => pool.delete(key));
  }
  return p;
}

/** Every model loaded so far whose pool key starts with `prefix` (e.g. "unet|" for the bench's MAC counts). */
export async function loadedModels<T>(prefix: string): Promise<T[]> {
  const out: T[] = [];
  for (const [k, p] of pool) if (k.startsWith(prefix)) out.push(await (p as Promise<T>));
  return out;
}

/** Drop every loaded model (tests, and long runs between phases). */
export function releaseModels(): void {
  pool.clear();
}

/** Graph cache directory ($VIDSEG_GRAPH_CACHE, else the loaders' default). */
export function graphCacheDir(): string | undefined {
  return Deno.env.get("VIDSEG_GRAPH_CACHE") ?? undefined;
}

/** Frames per VAE run: on CPU small runs are fastest and bound memory; on CUDA larger runs fill the device. */
export function vaeBatch(provider: string | undefined): number {
  // TAESD at 256×192 on CPU: 4 → 82 ms/frame, 14 → 86, 28 → 122.
  return provider === "cuda" ? 14 : 4;
}

/** Folder of the TAESD weights that ship with the repo (the embedded model's VAE, `modulation.decoder: taesd`). */
export function taesdFolder(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../data/models/tiny-ldm/vae");
}
