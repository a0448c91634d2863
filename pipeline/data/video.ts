/**
 * Video files as frame folders: a video is decoded once with ffmpeg into `<cache>/videos/<stem>-<identity>/`,
 * where the identity is derived from the file's *content*, never its name or path — two different videos
 * called `clip.mp4` get two folders, and a video rewritten in place gets a new one. The folder is published
 * by an atomic rename after a complete decode, with a `.complete` record of the identity it was made from
 * (checked again before reuse).
 *
 * A video that decodes to fewer frames than its container declares (ffprobe's frame count, else
 * duration × frame rate) is a UserError unless partial decodes are allowed: ffmpeg itself often exits 0 on a
 * truncated file.
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { acquireLock } from "../dag/lock.ts";

/** Video file extensions `segment` decodes. */
export const VIDEO_EXTS = [".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif"];

/** Whether a file name looks like a video. */
export function isVideo(name: string): boolean {
  return VIDEO_EXTS.includes(path.extname(name).toLowerCase());
}

/** Files up to this size are hashed whole; larger ones by size, mtime and their first and last chunks. */
const WHOLE_HASH_LIMIT = 256 << 20;
const EDGE_BYTES = 4 << 20;

/** Identity of a video file's content: a hex digest (see the module comment). */
export function videoIdentity(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new UserError(
      `${file}: cannot read the video (${(e as NodeJS.ErrnoException).code}); expected a readable file`,
    );
  }
  try {
    const st = fs.fstatSync(fd);
    const h = createHash("sha256");
    const buf = new Uint8Array(Math.min(EDGE_BYTES, Math.max(1, st.size)));
    const hashRange = (start: number, end: number) => {
      for (let pos = start; pos < end;) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        pos += n;
      }
    };
    if (st.size <= WHOLE_HASH_LIMIT) {
      h.update(`whole\0${st.size}\0`);
      hashRange(0, st.size);
    } else {
      h.update(`edges\0${st.size}\0${st.mtimeMs}\0`);
      hashRange(0, EDGE_BYTES);
      hashRange(st.size - EDGE_BYTES, st.size);
    }
    return h.digest("hex");
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `${file}: cannot read the video (${(e as NodeJS.ErrnoException).code ?? e}); expected a readable file`,
    );
  } finally {
    fs.closeSync(fd);
  }
}

/** Options of {@link decodeVideo}. */
export interface DecodeOptions {
  /** Cache root; decoded frames go to `<cacheDir>/videos/`. */
  cacheDir: string;
  /** Accept a video that decodes to fewer frames than its container declares (a note is printed). */
  allowPartial?: boolean;
  /** Where notes go (default stderr). */
  note?: (line: string) => void;
}

/** What `.complete` records about the decode. */
interface DecodeRecord {
  identity: string;
  frames: number;
  declared: number | null;
}

async function hasTool(tool: string): Promise<boolean> {
  try {
    return (await new Deno.Command(tool, { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/**
 * The number of frames the container declares for its first video stream: `nb_frames`, else
 * round(duration × average frame rate); null when ffprobe is missing or the container says nothing.
 */
export async function declaredFrames(file: string): Promise<number | null> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ffprobe", {
      args: [
        ...["-v", "error", "-select_streams", "v:0", "-of", "json"],
        ...["-show_entries", "stream=nb_frames,avg_frame_rate,r_frame_rate,duration:format=duration", file],
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch {
    return null;
  }
  if (!out.success) return null;
  try {
    const j = JSON.parse(new TextDecoder().decode(out.stdout));
    const s = j.streams?.[0] ?? {};
    const nb = Number(s.nb_frames);
    if (Number.isInteger(nb) && nb > 0) return nb;
    const rate = (r: unknown) => {
      const [a, b] = String(r ?? "").split("/").map(Number);
      return b > 0 && a > 0 ? a / b : NaN;
    };
    const fps = Number.isFinite(rate(s.avg_frame_rate)) ? rate(s.avg_frame_rate) : rate(s.r_frame_rate);
    const dur = Number(s.duration ?? j.format?.duration);
    const n = Math.round(dur * fps);
    return Number.isFinite(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Decoded PNG frames in a folder. */
function countFrames(dir: string): number {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".png")).length;
}

/** The record of a published decode, or null when absent, unreadable or made from other content. */
function readRecord(dir: string, identity: string): DecodeRecord | null {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, ".complete"), "utf8")) as DecodeRecord;
    return r.identity === identity && r.frames === countFrames(dir) ? r : null;
  } catch {
    return null;
  }
}

/**
 * Decode `file` into PNG frames (once per content) and return the folder. Reuses a published folder only when
 * its record names this content and its frame count is intact.
 */
export async function decodeVideo(file: string, opts: DecodeOptions): Promise<string> {
  const identity = videoIdentity(file);
  const stemName = path.basename(file).replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9_.-]/g, "_") || "video";
  const videos = path.join(opts.cacheDir, "videos");
  const dir = path.join(videos, `${stemName}-${identity.slice(0, 16)}`);
  if (reusable(file, dir, identity, opts)) return dir;
  // Shards on several hosts may start at once: one decodes, the others wait for it and reuse its folder.
  fs.mkdirSync(videos, { recursive: true });
  const lock = await acquireLock(`${dir}.lock`);
  try {
    if (reusable(file, dir, identity, opts)) return dir;
    return await decodeInto(file, dir, identity, stemName, videos, opts);
  } finally {
    lock.release();
  }
}

/** Whether a published decode of this content exists (a partial one only when partial decodes are allowed). */
function reusable(file: string, dir: string, identity: string, opts: DecodeOptions): boolean {
  const r = readRecord(dir, identity);
  if (!r) return false;
  if (r.declared !== null && r.frames < r.declared && !opts.allowPartial) {
    throw partialError(file, r.frames, r.declared);
  }
  return true;
}

async function decodeInto(
  file: string,
  dir: string,
  identity: string,
  stemName: string,
  videos: string,
  opts: DecodeOptions,
): Promise<string> {
  const note = opts.note ?? ((l: string) => console.error(l));
  if (!(await hasTool("ffmpeg"))) {
    throw new UserError(
      `${file}: decoding a video file needs ffmpeg (Debian: apt-get install ffmpeg), or pass a folder of frames`,
    );
  }
  const tmp = path.join(videos, `.${stemName}-${identity.slice(0, 16)}.${Deno.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const r = await new Deno.Command("ffmpeg", {
      args: ["-v", "error", "-nostdin", "-i", file, "-vsync", "0", path.join(tmp, "%05d.png")],
      stdout: "null",
      stderr: "piped",
    }).output();
    const frames = countFrames(tmp);
    const declared = await declaredFrames(file);
    const why = (new TextDecoder().decode(r.stderr).trim().split("\n")[0] ?? "").replace(
      /^\[[^\]]* @ 0x[0-9a-f]+\] /,
      "",
    );
    if (frames === 0) {
      throw new UserError(
        `${file}: ffmpeg could not decode any frame${why ? ` (${why})` : ""}; expected a complete video file`,
      );
    }
    const partial = (declared !== null && frames < declared) || !r.success;
    if (partial && !opts.allowPartial) {
      if (declared !== null && frames < declared) throw partialError(file, frames, declared);
      throw new UserError(
        `${file}: ffmpeg stopped with an error after ${frames} frame(s) (${why}); expected a complete video file (--allow-partial keeps the decoded frames)`,
      );
    }
    if (partial) {
      note(
        `note: ${file}: using the ${frames} decodable frame(s)${
          declared !== null ? ` of ${declared} declared` : ""
        } (--allow-partial)`,
      );
    }
    const record: DecodeRecord = { identity, frames, declared };
    fs.writeFileSync(path.join(tmp, ".complete"), JSON.stringify(record));
    try {
      fs.rmSync(dir, { recursive: true, force: true }); // an incomplete or foreign folder in the way
      fs.renameSync(tmp, dir);
    } catch (e) {
      // Another process published the same content first: use its folder.
      if (!readRecord(dir, identity)) throw e;
    }
    return dir;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function partialError(file: string, frames: number, declared: number): UserError {
  return new UserError(
    `${file}: decodes to ${frames} of the ${declared} frames its container declares (truncated or damaged file); expected a complete video (--allow-partial uses the ${frames} decodable frame(s))`,
  );
}
