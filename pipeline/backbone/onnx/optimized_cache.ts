/**
 * Graph variants of one model on CPU: one copy of the weights on disk and a fast start.
 *
 * The first time a variant is opened, its graph is built with a private side file, onnxruntime optimises it
 * (constant folding, fusions, the CPU's blocked conv layout) and writes the optimised graph; that graph's
 * initializers are moved into the model's shared weights store (content-addressed: a tensor another variant
 * already stored is referenced, not copied) and the built graph and its side file are deleted. What stays on
 * disk per variant is the optimised graph (a few hundred KB) referencing the store; the store holds every
 * weight once, in the form the CPU kernels read. Later sessions load the optimised graph with optimisation
 * disabled, the weights (pre-packed for the CPU kernels, see {@link savePrepacked}) memory-mapped from the store.
 *
 * The optimised form is specific to the CPU and onnxruntime version (both in its name). On CUDA the plain
 * graph references the shared store and is optimised at every start.
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { createSession, type Session, type SessionOptions } from "../runtime.ts";
import type { GraphBuilder } from "./builder.ts";
import {
  type CachedGraph,
  cachedGraph,
  type CachedGraphOptions,
  defaultGraphCacheDir,
  graphHash,
  storePath,
} from "./cache.ts";
import { tempPath } from "./io.ts";
import { relocateExternalData } from "./relocate.ts";
import { storeBytes, WeightStore } from "./weight_store.ts";

/** A session and the graph it runs. */
export interface OpenedGraph {
  graph: CachedGraph;
  session: Session;
}

/**
 * Whether the saved form also holds the weights pre-packed for the CPU kernels ($VIDSEG_PREPACKED, default 1):
 * the session then starts without re-packing (SD 2.1 UNet: seconds instead of tens of seconds) for ≈ 1.35× the
 * weights on disk (the packed MatMul weights beside the plain ones); 0 keeps the store at ≈ 1× the weights.
 */
export function savePrepacked(): boolean {
  return (Deno.env.get("VIDSEG_PREPACKED") ?? "1") !== "0";
}

/** Signature of this machine for optimised graphs: onnxruntime version, CPU model, architecture, packing. */
function machineSignature(prepacked: boolean): string {
  return createHash("sha256")
    .update(`${ort.env.versions?.common ?? ""}|${os.cpus()[0]?.model ?? ""}|${os.arch()}|${prepacked}`)
    .digest("hex").slice(0, 10);
}

/**
 * Open a graph variant whose weights go to the shared store `opts.sharedWeights` (required): on CPU through its
 * saved optimised form (made on first use), on CUDA from the plain graph.
 */
export async function openSharedGraph(
  opts: CachedGraphOptions,
  build: (g: GraphBuilder) => void,
  session: SessionOptions = {},
): Promise<OpenedGraph> {
  if (opts.sharedWeights === undefined) throw new Error("openSharedGraph: sharedWeights is required");
  const t0 = performance.now();
  if ((session.provider ?? "cpu") !== "cpu") {
    const graph = cachedGraph(opts, build);
    const s = await createSession({ path: graph.path }, session);
    graph.start = { fromOptimized: false, optimizedPath: "", ms: performance.now() - t0 - graph.buildMs };
    return { graph, session: s };
  }
  const dir = opts.dir ?? defaultGraphCacheDir();
  const store = storePath(opts);
  const prepacked = savePrepacked();
  const opt = path.join(dir, `${opts.name}-${graphHash(opts)}.opt-${machineSignature(prepacked)}.onnx`);
  const facts = (built: boolean, buildMs: number, fromOptimized: boolean, ms: number): CachedGraph => ({
    path: opt,
    built,
    external: true,
    buildMs,
    bytes: fs.statSync(opt).size,
    dataPath: store,
    dataBytes: storeBytes(store),
    shared: true,
    start: { fromOptimized, optimizedPath: opt, ms },
  });
  if (fs.existsSync(opt)) {
    const s = await createSession({ path: opt }, { ...session, optimization: "disabled" });
    return { graph: facts(false, 0, true, performance.now() - t0), session: s };
  }
  // Build with a private side file in a scratch folder beside the store, optimise, move into the store.
  const scratch = `${tempPath(path.join(dir, "build"))}.d`;
  try {
    const plain = cachedGraph(
      { ...opts, dir: scratch, sharedWeights: undefined, externalThreshold: 0 },
      build,
    );
    const t1 = performance.now();
    const tmp = path.join(scratch, "optimized.onnx");
    const s = await createSession({ path: plain.path }, {
      ...session,
      saveOptimized: { path: tmp, dataName: "optimized.onnx.data", prepacked },
    });
    const w = WeightStore.open(store);
    try {
      // The store records its own file name: the optimised graph is written beside it.
      const bytes = relocateExternalData(fs.readFileSync(tmp), scratch, w);
      w.commit();
      const t = tempPath(opt);
      fs.writeFileSync(t, bytes);
      fs.renameSync(t, opt);
    } catch (e) {
      w.abort();
      await s.release();
      throw e;
    }
    return { graph: facts(true, plain.buildMs, false, performance.now() - t1), session: s };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
