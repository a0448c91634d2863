/**
 * The library API (mod.ts): the README's example script runs as printed, `segment` returns exactly the label maps
 * the CLI writes, and `ablate` returns the metrics the CLI writes to metrics.csv — writing nothing unless asked.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { assert, assertEquals, assertGreater, assertRejects } from "../assert.ts";
import { DATA, ROOT } from "../paths.ts";
import { tempDir } from "../dag/fixtures/util.ts";
import { cli, runCli } from "../cli/run_cli.ts";
import { readLabelImage, segment, UserError } from "../../mod.ts";

const EXAMPLE = path.join(ROOT, "examples", "segment_frames.ts");
const SWAN = path.join(DATA, "swan", "images");

/** Files under results/ except the graph cache (which every model load may fill), relative paths. */
function resultsFiles(): string[] {
  const root = path.join(ROOT, "results");
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f !== "cache" && !f.startsWith(path.join("cache", "graphs")))
    .sort();
}

/** Leftover temporary folders of `segment` under `tmp` (they must be removed before it returns). */
const segmentTemps = (tmp: string = os.tmpdir()) =>
  fs.readdirSync(tmp).filter((f) => /^vidseg-(frames|cache)-/.test(f)).sort();

/** stdout of the example script once it has run in this file (the second test reuses it). */
let exampleStdout: string | null = null;

/** Share of every label value in `data`, rounded as the example prints it. */
function histogram(data: Uint8Array): string[] {
  const counts = new Map<number, number>();
  for (const v of data) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => a[0] - b[0]).map(([id, n]) =>
    `  cluster ${id}: ${(100 * n / data.length).toFixed(1)}%`
  );
}

Deno.test("api: the README example script segments the swan frames and writes nothing", async () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  assert(
    readme.includes(fs.readFileSync(EXAMPLE, "utf8").trim()),
    "README shows examples/segment_frames.ts as is",
  );
  const before = resultsFiles();
  const cwd = tempDir("example"); // the script does not depend on the current directory
  const tmp = tempDir("example-tmp"); // its own TMPDIR: other processes' temp folders are not its leftovers
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", EXAMPLE],
    cwd,
    env: { TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(o.stdout), stderr = new TextDecoder().decode(o.stderr);
  assertEquals(o.code, 0, stderr);
  assertEquals(stderr, "", "progress: null prints nothing");
  exampleStdout = stdout;
  const lines = stdout.trim().split("\n");
  assertEquals(lines[0], "images: 4 frames of 854x480");
  const shares = lines.slice(1).map((l) => {
    const m = /^ {2}cluster (\d+): (\d+\.\d)%$/.exec(l);
    assert(m, `histogram line: ${l}`);
    assert(Number(m[1]) < 4, "cluster ids are < k = 4");
    return Number(m[2]);
  });
  assertGreater(shares.length, 1, "more than one cluster");
  assert(
    Math.abs(shares.reduce((a, b) => a + b, 0) - 100) <= 0.05 * shares.length,
    `shares sum to 100: ${shares}`,
  );
  assertEquals(fs.readdirSync(cwd), [], "nothing written in the current directory");
  assertEquals(resultsFiles(), before, "nothing written under results/ (graph cache aside)");
  assertEquals(segmentTemps(tmp), [], "temporary frames/cache folders removed");
});

Deno.test("api: segment() returns the label maps `deno task segment` writes, and its histogram is the example's", async () => {
  const dir = tempDir("api-seg");
  const cache = path.join(dir, "cache"), out = path.join(dir, "out");
  const args = [
    "--k",
    "4",
    "--resolution",
    "128x64",
    "--set",
    "dataset.max_frames=4",
    "--cache",
    cache,
    "--out",
    out,
  ];
  const run = await cli("segment.ts", [...args, SWAN]);
  assertEquals(run.code, 0, run.stderr);
  // Same options through the library, on the CLI's cache: every stage is a cache hit, so the label maps must be
  // the very ones the CLI wrote as PNGs.
  const r = await segment(SWAN, {
    k: 4,
    resolution: [128, 64],
    set: ["dataset.max_frames=4"],
    cacheDir: cache,
    progress: null,
  });
  assertEquals(r.summary.run, 0, "all cached");
  assertEquals(r.clips.length, 1);
  const clip = r.clips[0];
  assertEquals(clip.outDir, null);
  assertEquals(clip.labels.shape, [4, 480, 854]);
  assertEquals(clip.frames.map((f) => f.name), ["00000", "00001", "00002", "00003"]);
  for (const f of clip.frames) {
    const png = readLabelImage(path.join(out, "labels", `${f.name}.png`));
    assertEquals(png.shape, f.labels.shape);
    assert(png.data.every((v, i) => v === f.labels.data[i]), `frame ${f.name}: API labels = CLI PNG`);
  }
  // The example ran the same options on a fresh temporary cache: same labels (determinism), same histogram.
  if (exampleStdout === null) {
    const ex = await runCli(EXAMPLE, [], {});
    assertEquals(ex.code, 0, ex.stderr);
    exampleStdout = ex.stdout;
  }
  assertEquals(exampleStdout.trim().split("\n").slice(1), histogram(clip.labels.data));
});

Deno.test("api: ablate() returns the rows' metrics, writes results only when asked", async () => {
  const dir = tempDir("api-ablate");
  const cfg = path.join(dir, "demo.yaml");
  fs.writeFileSync(
    cfg,
    "defaults:\n  dataset: {clips: [u1, u2]}\n  kmeans: {k: 2}\nrows:\n  A: {paper: {mIoU: 40, mVC8: 80, mVC16: 70}}\n  B: {knn: {k: 9}}\n",
  );
  // A child process: the test stages register under the method's stage names.
  const script = path.join(dir, "run.ts");
  fs.writeFileSync(
    script,
    `import { ablate } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "mod.ts")).href)};
const opts = { stages: [${JSON.stringify(path.join(ROOT, "tests/dag/fixtures/register.ts"))}], cacheDir: ${
      JSON.stringify(path.join(dir, "cache"))
    }, progress: null };
const quiet = await ablate(${JSON.stringify(cfg)}, opts);
const written = await ablate(${JSON.stringify(cfg)}, { ...opts, resultsDir: ${
      JSON.stringify(path.join(dir, "results"))
    } });
console.log(JSON.stringify({ quiet: quiet.rows, summary: quiet.summary.line, output: quiet.output, written: written.rows,
  files: written.output?.files.csv, cached: written.summary.line }));
`,
  );
  // Another program outside the repo: it uses the repo's import map through --config (see README, Library).
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", path.join(ROOT, "deno.json"), script],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(run.code, 0, new TextDecoder().decode(run.stderr));
  const r = JSON.parse(new TextDecoder().decode(run.stdout));
  assertEquals(r.summary, "14 run, 0 cached");
  assertEquals(r.cached, "0 run, 14 cached");
  assertEquals(r.output, null);
  assertEquals(r.quiet.map((x: { row: string }) => x.row), ["A", "B"]);
  assertEquals(r.quiet[0].paper, { mIoU: 40, mVC8: 80, mVC16: 70 });
  assertEquals(r.written, r.quiet);
  const csv = fs.readFileSync(r.files, "utf8").trim().split("\n");
  for (const [i, row] of r.quiet.entries()) {
    const cells = csv[i + 1].split(",");
    for (const [j, m] of ["mIoU", "mVC8", "mVC16"].entries()) {
      assert(typeof row.ours[m] === "number", `${row.row}.${m} is a number`);
      assertEquals(
        Number(cells[2 + 2 * j]).toFixed(2),
        row.ours[m].toFixed(2),
        `${row.row} ${m}: CSV = returned`,
      );
    }
  }
  assertEquals(fs.readdirSync(path.join(dir, "results")), ["demo"]);
});

Deno.test("api: segment() input mistakes are UserErrors naming the input, before anything is written", async () => {
  const dir = tempDir("api-bad");
  const note = path.join(dir, "notes.txt");
  fs.writeFileSync(note, "not a video");
  const tempsBefore = segmentTemps();
  await assertRejects(
    () => segment("no/such/folder", { cwd: dir }),
    UserError,
    "no/such/folder: no such file or folder",
  );
  await assertRejects(
    () => segment(note, {}),
    UserError,
    `${note}: expected a folder of frames or a video file`,
  );
  await assertRejects(
    () => segment(SWAN, { outDir: path.join(note, "out") }),
    UserError,
    `--out ${path.join(note, "out")}: cannot write there`,
  );
  assertEquals(fs.readdirSync(dir), ["notes.txt"]);
  assertEquals(segmentTemps(), tempsBefore);
});
