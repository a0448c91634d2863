/**
 * Generated bad inputs: valid inputs (a folder of 3 swan frames, a 4-frame MP4) are mutated by a seeded
 * generator — truncated, bytes flipped, extensions changed, names duplicated, permissions removed — and each
 * mutant is segmented into an output folder that already holds a previous run's results. The invariant for
 * every mutant: exit 0 with a complete output (one label map per frame at the frame's size, and the
 * reference labels when the mutation kept the content), or exit 2 with exactly one `error:` line and the
 * previous output untouched. Set VIDSEG_MUTATION_SEED to explore other mutants. The frame-folder mutants run in
 * tests/reliability/mutations_test.ts, the video mutants (ffmpeg) in tests/system/video_test.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { assert, assertEquals } from "../assert.ts";
import { cliEnv, listFiles, makeWeights, prng, runCli, SEGMENT, tempDir } from "./helpers.ts";
import { type Ctx, makeMp4, segmentArgs, swanFrames } from "./bad_cases.ts";

/** What a mutant is and what a success must look like. */
interface Mutant {
  name: string;
  /** The INPUT given to segment. */
  input: string;
  /** Frames a successful run must label (null: unknown, e.g. a damaged video). */
  frames: number | null;
  /** Which reference labels a success must reproduce byte for byte (the content was kept), if any. */
  same?: "frames" | "video";
  unprivileged?: boolean;
}

type Op = (dir: string, rnd: () => number) => Promise<Mutant> | Mutant;

const pick = <T>(xs: readonly T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)];
const FRAME_FILES = ["00000.jpg", "00001.jpg", "00002.jpg"];

/** The mutation operators; each gets a fresh folder with `swan/` (3 frames) and `clip.mp4`. */
const OPS: Record<string, Op> = {
  "truncate a frame": (dir, rnd) => {
    const f = path.join(dir, "swan", pick(FRAME_FILES, rnd));
    const b = fs.readFileSync(f);
    const frac = 0.05 + 0.9 * rnd();
    fs.writeFileSync(f, b.subarray(0, Math.floor(b.length * frac)));
    return {
      name: `truncate ${path.basename(f)} to ${(frac * 100).toFixed(0)}%`,
      input: path.join(dir, "swan"),
      frames: 3,
    };
  },
  "empty a frame": (dir, rnd) => {
    const f = path.join(dir, "swan", pick(FRAME_FILES, rnd));
    fs.writeFileSync(f, new Uint8Array(0));
    return { name: `empty ${path.basename(f)}`, input: path.join(dir, "swan"), frames: 3 };
  },
  "flip bytes of a frame": (dir, rnd) => {
    const f = path.join(dir, "swan", pick(FRAME_FILES, rnd));
    const b = new Uint8Array(fs.readFileSync(f));
    const n = 1 + Math.floor(rnd() * 64);
    for (let i = 0; i < n; i++) b[Math.floor(rnd() * b.length)] ^= 1 << Math.floor(rnd() * 8);
    fs.writeFileSync(f, b);
    return { name: `flip ${n} bit(s) of ${path.basename(f)}`, input: path.join(dir, "swan"), frames: 3 };
  },
  "frame extension to a skipped format": (dir, rnd) => {
    const f = pick(FRAME_FILES, rnd), ext = pick([".gif", ".bmp", ".txt"], rnd);
    const from = path.join(dir, "swan", f);
    fs.renameSync(from, from.replace(/\.jpg$/, ext));
    return { name: `rename ${f} to ${ext}`, input: path.join(dir, "swan"), frames: 2 };
  },
  "frame extension to another frame format": (dir, rnd) => {
    const f = pick(FRAME_FILES, rnd), ext = pick([".png", ".jpeg", ".JPG", ".webp"], rnd);
    const from = path.join(dir, "swan", f);
    fs.renameSync(from, from.replace(/\.jpg$/, ext));
    return {
      name: `rename ${f} to ${ext} (content kept)`,
      input: path.join(dir, "swan"),
      frames: 3,
      same: "frames",
    };
  },
  "duplicate a frame name": async (dir, rnd) => {
    const f = path.join(dir, "swan", pick(FRAME_FILES, rnd));
    await sharp(f).png().toFile(f.replace(/\.jpg$/, ".png"));
    return { name: `duplicate ${path.basename(f)} as .png`, input: path.join(dir, "swan"), frames: 3 };
  },
  "remove read permission of a frame": (dir, rnd) => {
    const f = path.join(dir, "swan", pick(FRAME_FILES, rnd));
    fs.chmodSync(f, 0o200);
    return {
      name: `chmod 200 ${path.basename(f)}`,
      input: path.join(dir, "swan"),
      frames: 3,
      unprivileged: true,
    };
  },
  "remove permissions of the frame folder": (dir, rnd) => {
    const mode = pick([0o000, 0o300, 0o500], rnd);
    fs.chmodSync(path.join(dir, "swan"), mode);
    const r = mode === 0o500; // readable and searchable: a valid input
    return {
      name: `chmod ${mode.toString(8)} swan/`,
      input: path.join(dir, "swan"),
      frames: 3,
      same: r ? "frames" : undefined,
      unprivileged: true,
    };
  },
  "truncate the video": (dir, rnd) => {
    const f = path.join(dir, "clip.mp4");
    const b = fs.readFileSync(f);
    const frac = 0.1 + 0.85 * rnd();
    fs.writeFileSync(f, b.subarray(0, Math.floor(b.length * frac)));
    return { name: `truncate clip.mp4 to ${(frac * 100).toFixed(0)}%`, input: f, frames: null };
  },
  "flip bytes of the video": (dir, rnd) => {
    const f = path.join(dir, "clip.mp4");
    const b = new Uint8Array(fs.readFileSync(f));
    const n = 1 + Math.floor(rnd() * 32);
    for (let i = 0; i < n; i++) b[Math.floor(rnd() * b.length)] ^= 1 << Math.floor(rnd() * 8);
    fs.writeFileSync(f, b);
    return { name: `flip ${n} bit(s) of clip.mp4`, input: f, frames: null };
  },
  "video extension changed": (dir, rnd) => {
    const ext = pick([".mkv", ".mov", ".txt", ".png"], rnd);
    const to = path.join(dir, `clip${ext}`);
    fs.renameSync(path.join(dir, "clip.mp4"), to);
    const video = [".mkv", ".mov"].includes(ext);
    return { name: `rename clip.mp4 to ${ext}`, input: to, frames: 3, same: video ? "video" : undefined };
  },
};

/** One failure description for a mutant, or "". */
async function check(
  m: Mutant,
  out: string,
  previous: Map<string, string>,
  run: Awaited<ReturnType<typeof runCli>>,
  ref: Record<string, Map<string, string>>,
): Promise<string> {
  const lines = run.stderr.split("\n").filter((l) =>
    l.trim() !== "" && !/^(\[\d+\/\d+\] |\s|kmeans )/.test(l)
  );
  const now = snapshot(out);
  const leftovers = fs.readdirSync(path.dirname(out)).filter((f) => f !== path.basename(out));
  if (leftovers.length) return `files beside the output: ${leftovers.join(", ")}`;
  if (run.code === 2) {
    if (lines.length !== 1 || !lines[0].startsWith("error: ")) {
      return `exit 2 but stderr is not one error line: ${lines.join(" | ")}`;
    }
    if (!sameMap(now, previous)) return `exit 2 but the previous output changed`;
    return "";
  }
  if (run.code !== 0) return `exit ${run.code}: ${run.stderr.slice(-400)}`;
  const extra = lines.filter((l) => !l.startsWith("note: ") && !l.startsWith("segment: "));
  if (extra.length) return `exit 0 with other stderr lines: ${extra.join(" | ")}`;
  const labels = [...now.keys()].filter((f) => f.startsWith(`labels${path.sep}`));
  if (m.frames !== null && labels.length !== Math.min(m.frames, 3)) {
    return `exit 0 with ${labels.length} label maps, expected ${m.frames}`;
  }
  if (!labels.length) return "exit 0 without label maps";
  for (const f of labels) {
    const meta = await sharp(path.join(out, f)).metadata();
    if (meta.format !== "png" || !meta.width || !meta.height) return `${f} is not a PNG`;
  }
  if (m.same && !sameMap(labelsOf(now), ref[m.same])) {
    return `exit 0 but the labels differ from the unmutated input's`;
  }
  return "";
}

function snapshot(dir: string): Map<string, string> {
  return new Map(listFiles(dir).map((f) => [f, fs.readFileSync(path.join(dir, f)).toString("base64")]));
}
const labelsOf = (s: Map<string, string>) =>
  new Map([...s].filter(([f]) => f.startsWith(`labels${path.sep}`)));
function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** Give every entry under `dir` back its permissions so it can be copied and removed. */
function restoreModes(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) restoreModes(p);
    else fs.chmodSync(p, 0o644);
  }
}

/** The operators that mutate the video (they need ffmpeg); the others mutate the frame folder. */
const isVideoOp = (name: string) => name.includes("video");

/**
 * Mutants of the frame folder (`kind` "frames", needs nothing but Deno) or of the MP4 (`kind` "video", needs
 * ffmpeg): each must give a complete output or one error line and leave the previous output unchanged.
 */
export async function checkMutants(kind: "frames" | "video"): Promise<void> {
  {
    const seed = Number(Deno.env.get("VIDSEG_MUTATION_SEED") ?? 20);
    const rnd = prng(seed);
    const root = tempDir("mutants");
    try {
      const base: Ctx = {
        dir: root,
        camvid: "",
        frames: [],
        weights: makeWeights(root),
        cache: path.join(root, "cache"), // one cache for every mutant: inputs are told apart by content
        results: "",
        config: "",
      };
      const env = cliEnv(path.join(root, "graphs"));
      const swan = swanFrames(base, 3);
      const mp4 = kind === "video" ? await makeMp4(base) : "";
      // Reference outputs of the valid inputs (also the "previous output" every mutant's run replaces).
      const ref: Record<string, Map<string, string>> = {};
      const refOut: Record<string, string> = {};
      const refs = kind === "video"
        ? [["frames", swan], ["video", mp4]] as const
        : [["frames", swan]] as const;
      for (const [k, input] of refs) {
        const out = path.join(root, "ref", k, "out");
        const r = await runCli(SEGMENT, argsFor(base, input, out), env);
        assertEquals(r.code, 0, r.stderr);
        ref[k] = labelsOf(snapshot(out));
        refOut[k] = out;
      }
      // Every operator once, then random ones up to the count.
      const names = Object.keys(OPS).filter((n) => isVideoOp(n) === (kind === "video"));
      const plan = [...names, ...Array.from({ length: 1 }, () => pick(names, rnd))];
      const failures: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < plan.length) {
          const i = next++;
          const dir = path.join(root, `m${i}`);
          fs.mkdirSync(dir);
          fs.cpSync(swan, path.join(dir, "swan"), { recursive: true });
          if (mp4) fs.copyFileSync(mp4, path.join(dir, "clip.mp4"));
          const out = path.join(dir, "results", "out");
          fs.cpSync(refOut.frames, out, { recursive: true });
          const previous = snapshot(out);
          const m = await OPS[plan[i]](dir, prng(seed * 1000 + i)); // one stream per mutant: order-free
          const r = await runCli(SEGMENT, argsFor(base, m.input, out), env, { unprivileged: m.unprivileged });
          restoreModes(dir);
          const f = await check(m, out, previous, r, ref);
          if (Deno.env.get("VIDSEG_BAD_VERBOSE")) console.log(`${m.name}: exit ${r.code} ${f || "ok"}`);
          if (f) failures.push(`${m.name}: ${f}`);
        }
      };
      await Promise.all([worker(), worker()]);
      assertEquals(failures, [], `seed ${seed}:\n${failures.join("\n")}`);
      assert(plan.length >= names.length);
    } finally {
      restoreModes(root);
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
}

/** segment's arguments for one mutant: the corpus's tiny settings, its own output folder. */
function argsFor(base: Ctx, input: string, out: string): string[] {
  const args = segmentArgs({ ...base, results: path.dirname(out) }, input).args;
  args[args.indexOf("--out") + 1] = out;
  return args;
}
