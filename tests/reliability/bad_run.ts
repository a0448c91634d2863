/**
 * Runs bad-input cases (bad_cases.ts) through the real CLIs, two at a time, and describes every broken invariant:
 * exit 2, exactly one `error: ...` line naming the culprit, no results, no cache entry of the failed stage.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ABLATE, cliEnv, listFiles, makeCamvid, makeWeights, runCli, SEGMENT, tempDir } from "./helpers.ts";
import type { Case, Ctx } from "./bad_cases.ts";

/** Run one case; returns a failure description or "". */
async function runCase(k: Case, graphCache: string): Promise<string> {
  const dir = tempDir("bad");
  try {
    const { root: camvid, frames } = makeCamvid(dir, 3);
    const c: Ctx = {
      dir,
      camvid,
      frames,
      weights: makeWeights(dir),
      cache: path.join(dir, "cache"),
      results: path.join(dir, "results"),
      config: path.join(dir, "tiny.yaml"),
    };
    const b = await k.build(c);
    const r = await runCli(b.cli === "ablate" ? ABLATE : SEGMENT, b.args, cliEnv(graphCache, b.env), {
      unprivileged: k.unprivileged,
    });
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !/^\[\d+\/\d+\] /.test(l));
    if (Deno.env.get("VIDSEG_BAD_VERBOSE")) console.log(`${k.name}\n  ${lines.join("\n  ")}`);
    const problems: string[] = [];
    if (r.code !== 2) problems.push(`exit code ${r.code} (expected 2)`);
    if (lines.length !== 1 || !lines[0].startsWith("error: ")) {
      problems.push(`stderr is not one "error: ..." line`);
    } else {
      for (const p of k.phrases(c)) if (!lines[0].includes(p)) problems.push(`error line lacks "${p}"`);
    }
    // No results: ablate writes results/<config>/..., segment writes its --out folder.
    const written = listFiles(c.results).filter((f) => !(k.planted ?? []).includes(f));
    if (written.length) {
      problems.push(`results written: ${written.slice(0, 4).join(", ")}`);
    }
    if (fs.existsSync(c.cache) && fs.statSync(c.cache).isDirectory()) {
      // Decoded videos are inputs, not stage results: a complete decode may stay.
      const stages = fs.readdirSync(c.cache).filter((d) =>
        !d.startsWith(".") && d !== "graphs" && d !== "videos"
      );
      const bad = stages.filter((s) =>
        !(k.cachedOk ?? []).includes(s) && fs.readdirSync(path.join(c.cache, s)).length
      );
      if (bad.length) problems.push(`cache entries of stage(s) ${bad.join(", ")}`);
    }
    return problems.length
      ? `${k.name}: ${problems.join("; ")}\n  stderr: ${r.stderr.trim().slice(-600)}`
      : "";
  } finally {
    restoreModes(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Give every folder under `dir` back its permissions (cases chmod them) so it can be removed. */
function restoreModes(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    fs.chmodSync(p, e.isDirectory() ? 0o755 : 0o644);
    if (e.isDirectory()) restoreModes(p);
  }
}

/** Run `cases` (filtered by VIDSEG_BAD_CASE when set); returns one description per failing case. */
export async function runCases(cases: Case[]): Promise<string[]> {
  const graphCache = tempDir("graphs");
  const failures: string[] = [];
  const only = Deno.env.get("VIDSEG_BAD_CASE");
  const todo = only ? cases.filter((k) => k.name.includes(only)) : cases;
  // Two at a time: the CLI start-up dominates and the machine has two cores.
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const f = await runCase(todo[next++], graphCache);
      if (f) failures.push(f);
    }
  };
  try {
    await Promise.all([worker(), worker()]);
  } finally {
    fs.rmSync(graphCache, { recursive: true, force: true });
  }
  return failures;
}
