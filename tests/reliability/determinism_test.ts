/**
 * Determinism: one config and seed give byte-identical label PNGs and metrics.csv across two independent runs
 * (fresh caches, fresh ONNX graph caches) and across onnxruntime intra-op thread counts 1 and 2
 * (`VIDSEG_THREADS`). No tolerance is needed or used: every comparison is on bytes, including the float
 * tensors of every cache entry (inverted latents, features, modulation differences). Measured: also identical
 * at 128×128; onnxruntime's CPU kernels split work across threads without changing the reduction order.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assertEquals, assertGreater } from "../assert.ts";
import { ABLATE, cliEnv, diffResults, listFiles, resultBytes, runCli, twoRowSetup } from "./helpers.ts";

/** `<stage>/<key>/tensors.safetensors` and `<stage>/<key>/streams/*.safetensors` → bytes, for every entry. */
function cacheTensors(cache: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const f of listFiles(cache)) {
    if (
      (f.endsWith("tensors.safetensors") || /\/streams\/[^/]+\.safetensors$/.test(f)) && !f.startsWith(".")
    ) {
      out.set(f, new Uint8Array(fs.readFileSync(path.join(cache, f))));
    }
  }
  return out;
}

Deno.test({
  name: "determinism: byte-identical labels and metrics across runs and across 1 vs 2 ORT threads",
  sanitizeResources: false,
  async fn() {
    const { dir, config } = twoRowSetup("determinism");
    try {
      const run = async (tag: string, threads: string, graphs: string) => {
        const r = await runCli(
          ABLATE,
          [config, "--cache", path.join(dir, `cache-${tag}`), "--results", path.join(dir, `results-${tag}`)],
          cliEnv(path.join(dir, graphs), { VIDSEG_THREADS: threads }),
        );
        assertEquals(r.code, 0, r.stderr);
        return resultBytes(path.join(dir, `results-${tag}`, "tiny"));
      };
      const a = await run("a", "1", "graphs-a");
      assertGreater(a.size, 6); // 2 rows × 3 label PNGs + metrics.csv
      const b = await run("b", "1", "graphs-b");
      assertEquals(diffResults(a, b), "", "two runs with the same config and seed");
      const c = await run("c", "2", "graphs-a");
      assertEquals(diffResults(a, c), "", "1 vs 2 onnxruntime threads");
      // Cache keys do not depend on the thread count, so the same entries exist in every cache.
      const ta = cacheTensors(path.join(dir, "cache-a"));
      assertGreater(ta.size, 10);
      for (const tag of ["b", "c"]) {
        assertEquals(
          diffResults(ta, cacheTensors(path.join(dir, `cache-${tag}`))),
          "",
          `cache tensors of run ${tag}`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
