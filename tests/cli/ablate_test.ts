/** End-to-end tests of `ablate` with the small test stages (tests/dag/fixtures), run as a child process. */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { tempDir } from "../dag/fixtures/util.ts";
import { cli } from "./run_cli.ts";

const STAGES = path.join(ROOT, "tests/dag/fixtures/register.ts");

const CONFIG = `title: CLI demo
defaults:
  dataset: {clips: [u1, u2]}
  kmeans: {k: 2}
rows:
  A:
    title: first
    paper: {mIoU: 40, mVC8: 80, mVC16: 70}
  B:
    knn: {k: 9}
`;

/** Run `ablate` as a child process. */
const ablate = (args: string[], env: Record<string, string> = {}) => cli("ablate.ts", args, env);

function setup(): { dir: string; cfg: string; common: string[] } {
  const dir = tempDir("cli");
  const cfg = path.join(dir, "demo.yaml");
  fs.writeFileSync(cfg, CONFIG);
  return {
    dir,
    cfg,
    common: ["--stages", STAGES, "--cache", path.join(dir, "cache"), "--results", path.join(dir, "results")],
  };
}

Deno.test("ablate: --plan, a full run, a cached re-run, and a one-param change", async () => {
  const { dir, cfg, common } = setup();
  const plan = await ablate([...common, "--plan", cfg]);
  assertEquals(plan.code, 0, plan.stderr);
  const lines = plan.stdout.trim().split("\n");
  assertEquals(lines.slice(1, 3), ["row A — first (2 units)", "  source  2 would run"]);
  assertEquals(
    lines[lines.length - 1],
    "plan: 2 rows, 18 stage instances, 14 unique: 0 cached, 14 would run",
  );
  assert(!fs.existsSync(path.join(dir, "cache", "source")), "--plan computes nothing");

  const first = await ablate([...common, cfg]);
  assertEquals(first.code, 0, first.stderr);
  assert(/ablate: 14 run, 0 cached \(\S+\)\n/.test(first.stderr), first.stderr);
  assert(!first.stderr.includes("\r"), "plain progress lines under CI=true");
  assert(/\[1\/14\] run source A\/u1\n\[1\/14\] done source A\/u1 in /.test(first.stderr), first.stderr);
  assert(/^stage +run +cached +corrupt +wall +mean$/m.test(first.stderr), "summary table");
  const out = path.join(dir, "results", "demo");
  const csv = fs.readFileSync(path.join(out, "metrics.csv"), "utf8").trim().split("\n");
  assertEquals(csv[0], "row,title,mIoU,paper_mIoU,mVC8,paper_mVC8,mVC16,paper_mVC16");
  assert(/^A,first,[0-9.]+,40,[0-9.]+,80,[0-9.]+,70$/.test(csv[1]), csv[1]);
  assert(/^B,,[0-9.]+,,[0-9.]+,,[0-9.]+,$/.test(csv[2]), csv[2]);
  for (const f of ["metrics.md", "class_iou.csv", "metrics.svg", "metrics.png"]) {
    assertGreater(fs.statSync(path.join(out, f)).size, 20);
  }
  assertEquals(fs.readdirSync(path.join(out, "A", "u2")).sort(), ["f000.png", "f001.png"]);
  assert(first.stdout.includes("8 label maps"), first.stdout);

  const second = await ablate([...common, cfg]);
  assertEquals(second.code, 0, second.stderr);
  assert(/ablate: 0 run, 14 cached \(\S+\)\n/.test(second.stderr), second.stderr);

  // A run of row B alone writes a results folder of row B only (tables and label maps).
  const before = fs.readFileSync(path.join(out, "metrics.csv"), "utf8").split("\n");
  const partial = await ablate([...common, "--rows", "B", "--set", "rows.B.seed=5", cfg]);
  assert(/ablate: 9 run, 0 cached /.test(partial.stderr), partial.stderr); // a new seed: all of B
  const after = fs.readFileSync(path.join(out, "metrics.csv"), "utf8").trim().split("\n");
  assertEquals(after.length, 2, after.join("\n"));
  assert(after[1] !== before[2] && after[1].startsWith("B,"), after[1]);
  assertEquals(fs.readdirSync(out).filter((f) => !f.includes(".")), ["B"]);

  const changed = await ablate([...common, "--set", "rows.A.knn.k=5", cfg]);
  assert(/ablate: 5 run, 9 cached \(\S+\)\n/.test(changed.stderr), changed.stderr); // side×2, merge×2, total of row A

  const only = await ablate([...common, "--rows", "B", "--plan", cfg]);
  assert(!only.stdout.includes("row A"), only.stdout);
  assert(
    only.stdout.includes("plan: 1 rows, 9 stage instances, 9 unique: 9 cached, 0 would run"),
    only.stdout,
  );
});

Deno.test("ablate: a config mistake is one line on stderr and exit code 2", async () => {
  const { dir, common } = setup();
  const bad = path.join(dir, "bad.yaml");
  fs.writeFileSync(bad, CONFIG.replace("knn: {k: 9}", "cbr: {treshold: 2}"));
  const r = await ablate([...common, bad]);
  assertEquals([r.code, r.stderr, r.stdout], [
    2,
    `error: ${bad}: rows.B.cbr.treshold: unknown key (did you mean cbr.spatial_threshold?)\n`,
    "",
  ]);
  const s = await ablate([...common, "--set", "batch_size=0", path.join(dir, "demo.yaml")]);
  assertEquals([s.code, s.stderr], [2, "error: --set batch_size: expected integer ≥ 1, got 0\n"]);
  const u = await ablate([...common, "--rows", "Q", path.join(dir, "demo.yaml")]);
  assertEquals([u.code, u.stderr], [
    2,
    `error: --rows: unknown row "Q" (${path.join(dir, "demo.yaml")} has rows A, B)\n`,
  ]);
  const a = await ablate(["--plna"]);
  assertEquals([a.code, a.stderr], [2, "error: unknown option --plna (did you mean --plan?)\n"]);
  const n = await ablate([]);
  assertEquals(n.code, 2);
  assert(n.stderr.startsWith("error: expected exactly one CONFIG file, got 0"), n.stderr);
});

Deno.test("ablate: a bug in a stage keeps its stack trace (exit 1, no 'error:' one-liner)", async () => {
  const { dir } = setup();
  const r = await ablate([
    "--stages",
    path.join(ROOT, "tests/cli/fixtures/broken.ts"),
    "--cache",
    path.join(dir, "c"),
    "--results",
    path.join(dir, "r"),
    path.join(dir, "demo.yaml"),
  ]);
  assertEquals(r.code, 1);
  assert(r.stderr.includes("boom in stage") && /\n\s+at .*broken\.ts/.test(r.stderr), r.stderr);
  assert(!r.stderr.startsWith("error: boom"), r.stderr);
});

Deno.test("ablate: --help", async () => {
  const r = await ablate(["--help"]);
  assertEquals(r.code, 0);
  assert(r.stdout.startsWith("usage: deno task ablate [--plan]"), r.stdout);
});

Deno.test("ablate: --plan of configs/table2.yaml lists all six rows", async () => {
  const dir = tempDir("cli");
  const r = await ablate([
    "--stages",
    STAGES,
    "--cache",
    path.join(dir, "cache"),
    "--plan",
    "--set",
    "dataset.clips=[c1]",
    path.join(ROOT, "configs/table2.yaml"),
  ]);
  assertEquals(r.code, 0, r.stderr);
  const rows = r.stdout.split("\n").filter((l) => l.startsWith("row ")).map((l) => l.split(" ")[1]);
  assertEquals(rows, ["A", "B", "C", "D", "E", "F"]);
});
