/**
 * The cache folder as a user meets it: `--cache DIR` holds the built ONNX graphs too (in DIR/graphs, without
 * any environment variable), and `deno task notebooks` on a cache that holds no run is one `error:` line
 * naming the `ablate` command that fills it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { cli } from "./run_cli.ts";
import { makeCamvid, tempDir, tinyConfig } from "../reliability/helpers.ts";
import { FIXTURES } from "../paths.ts";

Deno.test({
  name: "--cache DIR: the built graphs go to DIR/graphs",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("cache-graphs");
    try {
      const { root: camvid } = makeCamvid(dir, 1);
      const config = path.join(dir, "tiny.yaml");
      const weights = path.join(FIXTURES, "conformance");
      fs.writeFileSync(config, tinyConfig({ weights, camvid, maxFrames: 1 }));
      const cache = path.join(dir, "cache");
      // No VIDSEG_GRAPH_CACHE: the graphs must follow --cache, not land in the repo's results/ (the variable is
      // removed from what the CLI inherits: in-process CLI calls of other tests may have set it).
      const inherited = Deno.env.get("VIDSEG_GRAPH_CACHE");
      Deno.env.delete("VIDSEG_GRAPH_CACHE");
      const r = await cli("ablate.ts", [config, "--cache", cache, "--results", path.join(dir, "results")], {
        VIDSEG_THREADS: "1",
      }).finally(() => inherited !== undefined && Deno.env.set("VIDSEG_GRAPH_CACHE", inherited));
      assertEquals(r.code, 0, r.stderr);
      const graphs = fs.readdirSync(path.join(cache, "graphs")).filter((f) => f.endsWith(".onnx"));
      assert(graphs.length >= 2, `graphs in ${cache}/graphs: ${graphs.join(", ")}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("notebooks on a cache without the run: one error line naming the ablate command", async () => {
  const dir = tempDir("nb-empty");
  try {
    const cache = path.join(dir, "cache");
    fs.mkdirSync(cache);
    const r = await cli("notebooks.ts", ["--cache", cache, "--out", path.join(dir, "nb")]);
    assertEquals(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith(`error: ${cache}: no finished run of `), lines[0]);
    assert(
      lines[0].includes(`fill it with: deno task ablate configs/table2.yaml --cache ${cache}`),
      lines[0],
    );
    assert(!fs.existsSync(path.join(dir, "nb")), "no notebooks written");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
