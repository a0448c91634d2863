/**
 * The sd21 bench phase end to end on the conformance model in place of the SD 2.1-sized one (same code path:
 * the stages' variant runner, the shared weights store, the saved optimised graphs, the decoders): every
 * variant is measured at every batch size, the reopened sessions come from the optimised forms, and the disk
 * and memory figures are consistent with the files it left.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runSd21 } from "../../pipeline/bench/sd21.ts";
import { assert, assertEquals } from "../assert.ts";
import { FIXTURES } from "../paths.ts";

Deno.test("sd21 phase on the conformance model: all variants, cached sessions, disk and decoder figures", async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-sd21-"));
  const cacheEnv = Deno.env.get("VIDSEG_GRAPH_CACHE");
  try {
    const r = await runSd21(work, true, () => {}, path.join(FIXTURES, "conformance"));
    assertEquals(r.batches, [1, 2]);
    assertEquals(Object.keys(r.unet_s_per_sample).sort(), ["features", "modulated", "record"]);
    for (const v of Object.keys(r.unet_s_per_sample)) {
      for (const b of r.batches) assert(r.unet_s_per_sample[v][b] > 0, `${v} @${b}`);
      assert(r.session_cached_s[v] > 0 && r.unet_gflops[v] > 0 && r.unet_s_per_sample_cached[v] > 0, v);
    }
    const files = fs.readdirSync(path.join(work, "graphs"));
    assertEquals(
      files.filter((f) => f.includes(".opt-")).length,
      3,
      `one optimised graph per variant: ${files}`,
    );
    assert(
      r.variants_disk_bytes > r.store_bytes && r.store_bytes >= 0.9 * r.weights_bytes,
      JSON.stringify(r),
    );
    assert((r.peak_rss_bytes ?? 0) > 0, "peak RSS of the second-run process");
    assert(r.decode_s_per_frame.vae > 0 && r.decode_s_per_frame.taesd > 0, "both decoders timed");
    assertEquals(Deno.env.get("VIDSEG_GRAPH_CACHE"), cacheEnv, "the phase restores the graph cache setting");
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
