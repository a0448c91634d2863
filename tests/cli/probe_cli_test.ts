import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { syntheticVideo, writeSyntheticCamvid } from "../../pipeline/data/synthetic.ts";
import { runCli } from "./run_cli.ts";
import { DATA } from "../paths.ts";

const PROBE = "pipeline/cli/probe.ts";

Deno.test("probe: the embedded model on a short synthetic clip prints per-clip and total scores; a re-run is cached", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "probe-cli-"));
  try {
    await writeSyntheticCamvid(
      path.join(dir, "data"),
      syntheticVideo({ frames: 3, height: 128, width: 128, seed: 4 }),
    );
    const args = [
      "--set",
      `dataset.root=${path.join(dir, "data")}`,
      "--set",
      "resolution=[128, 128]",
      "--set",
      "kmeans.k=4",
      "--set",
      "kmeans.n_init=2",
      "--cache",
      path.join(dir, "cache"),
    ];
    const r = await runCli(PROBE, args, { VIDSEG_THREADS: "1" });
    assertEquals(r.code, 0, r.stderr);
    const last = r.stdout.trim().split("\n").at(-1)!;
    const m = /^probe: mIoU (\d+\.\d) stability (\d+\.\d) same-cell-cosine (-?\d+\.\d)$/.exec(last);
    assert(m, `last line: ${last}`);
    assert(Number(m[1]) > 0 && Number(m[1]) <= 100, last);
    assert(r.stdout.includes("synthetic | "), r.stdout);
    assert(/probe: 3 run, 0 cached/.test(r.stderr), r.stderr); // frames, invert, features of the one clip
    const again = await runCli(PROBE, args, { VIDSEG_THREADS: "1" });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.stdout, r.stdout); // same config ⇒ same numbers (from the cached features)
    assert(/probe: 0 run, 3 cached/.test(again.stderr), again.stderr);
    // Weights rewritten in place (a checkpoint re-exported into the same folder): the features are recomputed.
    const model = path.join(dir, "model");
    fs.cpSync(path.join(DATA, "models", "tiny-ldm"), model, { recursive: true });
    const withModel = [...args, "--weights", model];
    const first = await runCli(PROBE, withModel, { VIDSEG_THREADS: "1" });
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stdout.split("\n").at(-2), r.stdout.split("\n").at(-2)); // same weights, same scores
    const unet = path.join(model, "unet", "diffusion_pytorch_model.safetensors");
    const bytes = fs.readFileSync(unet);
    bytes[bytes.length - 1] ^= 0x40; // one weight changes
    fs.writeFileSync(unet, bytes);
    const changed = await runCli(PROBE, withModel, { VIDSEG_THREADS: "1" });
    assertEquals(changed.code, 0, changed.stderr);
    assert(/probe: 2 run, 1 cached/.test(changed.stderr), changed.stderr); // invert + features again, frames cached
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("probe: an unknown row is one error line and exit 2", async () => {
  const r = await runCli(PROBE, ["--row", "Z"], {});
  assertEquals(r.code, 2);
  assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert(r.stderr.startsWith("error: --row Z:"), r.stderr);
});
