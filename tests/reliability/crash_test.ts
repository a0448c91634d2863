/**
 * End-to-end crash safety of `ablate`: a tiny two-row config (conformance model, one clip of 3 frames, 64×64)
 * is run uninterrupted once, then run again in a fresh cache and SIGKILLed at ≥ 20 seeded random instants,
 * restarted after each kill, until a run completes. Checks: the final label PNGs and metrics.csv are
 * byte-identical to the uninterrupted run, every cache entry verifies against its manifest hashes, no temp
 * directory is left behind, and no stage instance reported done by one run is computed again by a later one.
 * `VIDSEG_CRASH_KILLS=N` raises the number of kills (the long variant).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { ArtifactStore } from "../../pipeline/dag/store.ts";
import { SampleStore } from "../../pipeline/dag/sample_cache.ts";
import { ABLATE, cliEnv, diffResults, prng, resultBytes, runCli, twoRowSetup } from "./helpers.ts";

const KILLS = Number(Deno.env.get("VIDSEG_CRASH_KILLS") ?? 20);
const SEED = 20251125;

/** One attempt: spawn ablate, SIGKILL it after `killAfterMs` unless it finished first. */
async function attempt(
  args: string[],
  env: Record<string, string>,
  killAfterMs: number,
): Promise<{ killed: boolean; code: number; stderr: string; ms: number; firstLineMs: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ABLATE, ...args],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let firstLineMs = -1;
  const stderr = (async () => {
    let acc = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      acc += dec.decode(chunk, { stream: true });
      if (firstLineMs < 0 && /^\[\d+\/\d+\] /m.test(acc)) firstLineMs = performance.now() - t0;
    }
    return acc;
  })();
  const timer = Number.isFinite(killAfterMs)
    ? setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    }, killAfterMs)
    : undefined;
  const status = await child.status;
  clearTimeout(timer);
  return {
    killed: status.signal === "SIGKILL",
    code: status.code,
    stderr: await stderr,
    ms: performance.now() - t0,
    firstLineMs,
  };
}

/** Stage instances a run reports as computed ("[3/15] done features plain/clip in 1.2s"). */
function doneLabels(stderr: string): string[] {
  return [...stderr.matchAll(/^\[\d+\/\d+\] done (\S+ \S+) in /gm)].map((m) => m[1]);
}

/** Wall time (ms) of the stage instances a run computed, from its "done … in 1.2s" lines. */
function doneWallMs(stderr: string): number {
  let ms = 0;
  for (const m of stderr.matchAll(/^\[\d+\/\d+\] done \S+ \S+ in ([\d.]+)(ms|s)\b/gm)) {
    ms += Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  }
  return ms;
}

/** What the run was doing when it died: the last progress line, reduced to its verb and stage. */
function phase(stderr: string): string {
  if (/^\(all\) /m.test(stderr)) return "writing results"; // the summary table precedes the results
  const lines = stderr.trim().split("\n").filter((l) => /^\[\d+\/\d+\] (run|done) /.test(l));
  const last = lines.at(-1);
  if (!last) return "start-up";
  const m = /^\[\d+\/\d+\] (run|done) (\S+)/.exec(last)!;
  return m[1] === "run" ? `in ${m[2]}` : `after ${m[2]}`;
}

/**
 * Verify every entry of a cache directory against its manifest, and every shared sample against its hash;
 * returns the number of entries.
 */
function verifyCache(cache: string): number {
  const store = new ArtifactStore(cache);
  const samples = new SampleStore(cache, store.tmpDir).verify();
  assertEquals(samples.corrupt, [], "damaged shared samples");
  let n = 0;
  for (const stage of fs.readdirSync(cache)) {
    if (stage.startsWith(".") || stage === "samples" || !fs.statSync(path.join(cache, stage)).isDirectory()) {
      continue;
    }
    for (const key of fs.readdirSync(path.join(cache, stage))) {
      store.read(stage, key); // throws CorruptEntryError on any hash mismatch
      n++;
    }
  }
  return n;
}

Deno.test({
  name: `crash safety: ablate SIGKILLed ${KILLS} times and restarted gives byte-identical results`,
  sanitizeResources: false,
  async fn() {
    const { dir, config } = twoRowSetup("crash");
    try {
      const res = (tag: string) => path.join(dir, `results-${tag}`);
      const args = (
        tag: string,
      ) => [config, "--cache", path.join(dir, `cache-${tag}`), "--results", res(tag)];

      const ref = await attempt(args("ref"), cliEnv(path.join(dir, "graphs-ref")), Infinity);
      assertEquals(ref.code, 0, ref.stderr);
      const expected = resultBytes(path.join(res("ref"), "tiny"));
      assertGreater(expected.size, 6); // 2 rows × 3 label PNGs + metrics.csv

      // The crash runs get their own ONNX graph cache too, so kills also land in graph building.
      const env = cliEnv(path.join(dir, "graphs-crash"));
      const random = prng(SEED);
      // Kill instants: KILLS sorted seeded points on the uninterrupted run's timeline after start-up (stages,
      // then results). Attempt k is killed at start-up + (T_k − stage time already cached), so successive kills
      // move forward through the pipeline, hit each long stage at several offsets, and progress is guaranteed.
      // 70 % of the kills go there; then one run completes and the other 30 % are spread over fully cached
      // runs (start-up, cache reads, results writing).
      const startupMs = ref.firstLineMs;
      const timeline = ref.ms - startupMs;
      const onTimeline = Math.ceil(KILLS * 0.7);
      const instants = Array.from({ length: onTimeline }, () => random() * timeline).sort((x, y) => x - y);
      const phases: string[] = [];
      const doneBy = new Map<string, number>(); // stage instance → the attempt that computed it
      const recomputed: string[] = [];
      const logs: string[] = [];
      let kills = 0, completed = 0, attempts = 0, doneMs = 0, cachedRunMs = 0;
      const record = (stderr: string) => {
        for (const label of doneLabels(stderr)) {
          if (doneBy.has(label)) {
            recomputed.push(`${label} (done in attempt ${doneBy.get(label)}, again in ${attempts})`);
          } else doneBy.set(label, attempts);
        }
        logs.push(stderr);
      };
      while (kills < KILLS && attempts < KILLS * 3) {
        attempts++;
        const delay = cachedRunMs > 0
          ? (0.05 + 0.95 * random()) * cachedRunMs
          : kills < onTimeline
          ? startupMs + Math.max(0, instants[kills] - doneMs)
          : Infinity; // let one run complete, then kill cached runs
        const a = await attempt(args("crash"), env, delay);
        record(a.stderr);
        doneMs += doneWallMs(a.stderr);
        if (a.killed) {
          kills++;
          phases.push(phase(a.stderr));
        } else {
          assertEquals(a.code, 0, a.stderr);
          completed++;
          cachedRunMs = a.ms;
        }
      }
      assert(kills >= KILLS, `only ${kills} kills in ${attempts} attempts`);
      attempts++;
      const last = await runCli(ABLATE, args("crash"), env);
      assertEquals(last.code, 0, last.stderr);
      record(last.stderr);

      const entries = verifyCache(path.join(dir, "cache-crash"));
      assertEquals(entries, verifyCache(path.join(dir, "cache-ref")));
      const diff = diffResults(expected, resultBytes(path.join(res("crash"), "tiny")));
      assertEquals(diff, "", diff);
      assertEquals(recomputed, [], recomputed.join("\n"));
      // The parse saw the runs' "done" lines (a kill between an entry's commit and its line may hide one).
      assert(
        doneBy.size >= entries - 2 && doneBy.size <= entries,
        `${doneBy.size} done of ${entries} entries`,
      );
      const all = logs.join("\n");
      assert(!/corrupt cache entry/.test(all), "a run found a corrupt cache entry");
      const tmp = path.join(dir, "cache-crash", ".tmp");
      assertEquals(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], "temp dirs of killed runs are swept");
      // The kills must have hit the middle of stage computations, not only start-up.
      assert(phases.some((p) => p.startsWith("in ")), `kill phases: ${phases.join(", ")}`);
      assert(completed >= 1, "a run completes between the timeline kills and the cached-run kills");
      console.log(
        `crash: ${kills} kills, ${completed} completed runs before the last, ${attempts} attempts, ` +
          `${entries} entries verified; kill phases: ${phases.join(", ")}`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
