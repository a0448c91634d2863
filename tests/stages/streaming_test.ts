/**
 * Long videos stream: no stage loads a whole per-frame tensor of its upstream (frames, latents, features,
 * difference maps); each reads the rows of one batch (or frame) at a time, and streams its own per-frame outputs
 * to the cache. Checked on the real stages and the embedded model with a 20-frame clip whose last batch overlaps
 * the first (§6.4), against the same run with whole tensors held in memory (byte-identical labels).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { loadConfig } from "../../pipeline/config/load.ts";
import { Runner } from "../../pipeline/dag/runner.ts";
import { type Artifacts, materialize } from "../../pipeline/dag/stage.ts";
import { STAGES } from "../../pipeline/stages/mod.ts";
import { writeSyntheticFrames } from "../../pipeline/bench/scenarios.ts";
import { Progress } from "../../pipeline/dag/progress.ts";

/** Per-frame tensors whose whole-clip loading would make memory grow with the video's length. */
const PER_FRAME = new Set(["frames", "z0", "q6", "q7", "q8", "diff"]);

async function run(cache: string, clips: string, streamed: boolean) {
  const file = path.join(ROOT, "configs", "small.yaml");
  const cfg = loadConfig(file, {
    set: [
      "dataset.kind=frames",
      `dataset.root=${clips}`,
      "dataset.clips=all",
      "dataset.max_frames=null",
      "resolution=[128,64]",
      "kmeans.k=3",
      "kmeans.n_init=1",
    ],
  });
  const row = cfg.rows.find((r) => r.name === "full")!;
  const runner = new Runner({
    cacheDir: cache,
    root: ROOT,
    progress: new Progress({ write: () => {}, isTty: false }),
  });
  const fullLoads: string[] = [];
  const read = runner.store.read.bind(runner.store);
  runner.store.read = (stage, key, opts) => {
    const r = read(stage, key, opts);
    if (!streamed) return { ...r, artifacts: materialize(r.artifacts) }; // whole tensors, no row reads
    const lazy = r.artifacts.tensors;
    const watched: Artifacts["tensors"] = {};
    for (const name of Object.keys(lazy)) {
      Object.defineProperty(watched, name, {
        enumerable: true,
        get: () => (PER_FRAME.has(name) && fullLoads.push(`${stage}.${name}`), lazy[name]),
      });
    }
    return { ...r, artifacts: { ...r.artifacts, tensors: watched } };
  };
  const stages = STAGES.filter((s) => s.name !== "evaluate");
  const plan = await runner.plan(stages, [{ name: "full", config: row.config as never, units: ["clip"] }]);
  await runner.execute(plan);
  const labels = plan.rows[0].slots.find((s) => s.stage === "labels")!;
  const out = materialize(await runner.load(plan, labels.key));
  return { labels: out.tensors.labels, fullLoads };
}

Deno.test("streaming: no stage loads a whole per-frame tensor; labels equal the in-memory run", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-stream-"));
  try {
    await writeSyntheticFrames(path.join(dir, "clips", "clip"), 20, 64, 128);
    const a = await run(path.join(dir, "cache-a"), path.join(dir, "clips"), true);
    assertEquals(a.fullLoads, []);
    assertEquals(a.labels.shape, [20, 64, 128]);
    const b = await run(path.join(dir, "cache-b"), path.join(dir, "clips"), false);
    assert(a.labels.data.every((v, i) => v === b.labels.data[i]), "streamed and in-memory labels differ");
    // Streamed tensors live in their own files of the entry, readable as plain safetensors.
    const diffEntries = fs.readdirSync(path.join(dir, "cache-a", "modulate"));
    assertEquals(fs.readdirSync(path.join(dir, "cache-a", "modulate", diffEntries[0], "streams")), [
      "diff.safetensors",
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
