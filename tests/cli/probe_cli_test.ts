import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { syntheticVideo, writeSyntheticCamvid } from "../../pipeline/data/synthetic.ts";
import { runCli } from "./run_cli.ts";

const PROBE = "pipeline/cli/probe.ts";

Deno.test("probe: the embedded model on a short synthetic clip prints per-clip and total scores; a re-run is cached", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "probe-cli-"));
  try {
    await writeSyntheticCamvid(path.join(dir, "data"), syntheticVideo({ frames: 3, height: 128, width: 128, seed: 4 }));
    const args = [
      "--set", `dataset.root=${path.join(dir, "data")}`, "--set", "resolution=[128, 128]", "--set", "kmeans.k=4",
      "--set", "kmeans.n_init=2", "--cache", path.join(dir, "cache"),
    ];
    const r = await runCli(PROBE, args, { VIDSEG_THREADS: "1" });
    assertEquals(r.code, 0, r.stderr);
    const last = r.stdout.trim().split("\n").at(-1)!;
    const m = /^probe: mIoU (\d+\.\d) stability (\d+\.\d) same-cell-cosine (-?\d+\.\d)$/.exec(last);
    assert(m, `last line: ${last}`);
    assert(Number(m[1]) > 0 && Number(m[1]) <= 100, last);
    assert(r.stdout.includes("synthetic | "), r.stdout);
    const again = await runCli(PROBE, args, { VIDSEG_THREADS: "1" });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.stdout, r.stdout); // same config ⇒ same numbers (from the cached features)
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
