/**
 * Weights are known by content: a model folder rewritten in place (same path, same sizes, other tensors) must not
 * reuse what was computed from the old weights.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { ABLATE, cliEnv, makeCamvid, makeWeights, runCli, tempDir, tinyConfig } from "./helpers.ts";

/** "plan: … N cached, M would run" of `ablate --plan`. */
function planCounts(stdout: string): [number, number] {
  const m = /plan: .* (\d+) cached, (\d+) would run/.exec(stdout);
  assert(m, stdout);
  return [Number(m[1]), Number(m[2])];
}

Deno.test({
  name: "weights identity: weights rewritten in place rerun the diffusion stages; frames stay cached",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("weights-id");
    try {
      const { root: camvid } = makeCamvid(dir, 2);
      const weights = makeWeights(dir);
      const config = path.join(dir, "tiny.yaml");
      fs.writeFileSync(config, tinyConfig({ weights, camvid, maxFrames: 2 }));
      const env = cliEnv(path.join(dir, "graphs"));
      const common = [config, "--cache", path.join(dir, "cache"), "--results", path.join(dir, "results")];
      const run = await runCli(ABLATE, common, env);
      assertEquals(run.code, 0, run.stderr);
      const [total, toRun] = planCounts((await runCli(ABLATE, [...common, "--plan"], env)).stdout);
      assertEquals(toRun, 0, "all cached after the run");
      assert(total > 0);

      // Rewrite the last 4 bytes of the UNet's tensor data in place: same path, same size, other weights.
      const unet = path.join(
        weights,
        "unet",
        fs.readdirSync(path.join(weights, "unet")).find((f) => f.endsWith(".safetensors"))!,
      );
      const bytes = fs.readFileSync(unet);
      new DataView(bytes.buffer, bytes.byteOffset).setFloat32(bytes.length - 4, 0.125, true);
      fs.writeFileSync(unet, bytes);
      const after = await runCli(ABLATE, [...common, "--plan"], env);
      assertEquals(after.code, 0, after.stderr);
      const [cached, rerun] = planCounts(after.stdout);
      assert(rerun > 0 && cached > 0, after.stdout);
      for (const stage of ["invert", "features", "modulate"]) {
        const line = after.stdout.split("\n").find((l) => l.trim().startsWith(stage));
        assert(
          line && /would run|run/.test(line) && !/^\s*\S+\s+1 cached\s*$/.test(line),
          `${stage}: ${line}`,
        );
      }
      const frames = after.stdout.split("\n").find((l) => l.trim().startsWith("frames"));
      assert(frames && /cached/.test(frames) && !/would run/.test(frames), `frames: ${frames}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
