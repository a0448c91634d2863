/**
 * The one dataset interface: a `VideoClip` is an ordered list of frames, each with its image path and an
 * optional GT label PNG, plus the dataset's class list, palette and ignored GT values. Shared helpers for the
 * layout loaders: listing, frame ordering, clip selection, layout errors.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import type { Rgb } from "../tensor/image.ts";

/** One evaluated class. */
export interface ClassInfo {
  /** Class id as stored in the GT label PNGs. */
  id: number;
  /** Class name. */
  name: string;
}

/** One frame of a clip. */
export interface ClipFrame {
  /** File stem, used to name outputs (aligns them with the GT files). */
  name: string;
  /** Image path. */
  image: string;
  /** GT label PNG (class id per pixel), null when the frame is not annotated. */
  gt: string | null;
}

/** A video of a dataset. */
export interface VideoClip {
  /** Clip name (unique in its dataset). */
  name: string;
  /** Frames in temporal order. */
  frames: ClipFrame[];
  /** Evaluated classes (mIoU rows). */
  classes: ClassInfo[];
  /** Colour per label value (index = value). */
  palette: Rgb[];
  /** GT values excluded from mIoU (e.g. VSPW 0 and 255, CamVid 11, Cityscapes 255). */
  ignoreIds: number[];
}

/** Which clips to load (config `dataset.*`). */
export interface ClipSelection {
  /** Split name; null = the dataset's evaluation split (see each loader). */
  split?: string | null;
  /** "all" or clip names. */
  clips?: "all" | readonly string[];
  /** Keep only the first N frames of each clip. */
  maxFrames?: number | null;
}

/** Image file extensions accepted as frames. */
export const IMAGE_EXTS = [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"];

/** Whether a file name is an image. */
export function isImage(name: string): boolean {
  return IMAGE_EXTS.includes(path.extname(name).toLowerCase());
}

/** File stem (name without extension). */
export function stem(file: string): string {
  return path.basename(file, path.extname(file));
}

/** Sorted entries of a folder, or null if it is not a readable folder. */
export function listDir(dir: string): string[] | null {
  try {
    if (!fs.statSync(dir).isDirectory()) return null;
    return fs.readdirSync(dir).sort();
  } catch {
    return null;
  }
}

/** Whether `p` is an existing file. */
export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Whether `p` is an existing folder. */
export function isDir(p: string): boolean {
  return listDir(p) !== null;
}

/** A short description of what a folder holds, for layout errors. */
export function describeFolder(dir: string): string {
  const entries = listDir(dir);
  if (entries === null) {
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      return "nothing (the folder does not exist)";
    }
    return st.isDirectory() ? "a folder this user cannot read (permission denied)" : "a file, not a folder";
  }
  if (entries.length === 0) return "an empty folder";
  const shown = entries.slice(0, 8).map((e) => (isDir(path.join(dir, e)) ? e + "/" : e));
  return shown.join(", ") + (entries.length > 8 ? `, … (${entries.length} entries)` : "");
}

/** Throw the one-line layout error: `<dir>: not a <kind> dataset: expected <expected>; found <what is there>`. */
export function layoutError(dir: string, kind: string, expected: string, found?: string): never {
  fail(dir, `not a ${kind} dataset: expected ${expected}; found ${found ?? describeFolder(dir)}`);
}

/**
 * Frame order: by the integer prefix of the file name when every name starts with digits (VSPW `00000123.jpg`,
 * `frame_name_list` sorted by int), else lexicographic.
 */
export function sortFrameFiles(names: readonly string[]): string[] {
  const prefix = (n: string) => /^\d+/.exec(n)?.[0];
  if (names.length > 0 && names.every((n) => prefix(n) !== undefined)) {
    return [...names].sort((a, b) => Number(prefix(a)) - Number(prefix(b)) || (a < b ? -1 : a > b ? 1 : 0));
  }
  return [...names].sort();
}

/** The clip names `sel.clips` picks from `available` (unknown names are a UserError listing the known ones). */
export function pickClipNames(available: readonly string[], sel: ClipSelection, root: string): string[] {
  if (!sel.clips || sel.clips === "all") return [...available];
  const known = new Set(available);
  for (const n of sel.clips) {
    if (!known.has(n)) {
      fail(
        root,
        `no clip "${n}" (known clips: ${available.slice(0, 10).join(", ")}${
          available.length > 10 ? ", …" : ""
        })`,
      );
    }
  }
  return [...sel.clips];
}

/** Keep the first `sel.maxFrames` frames of each clip. */
export function limitFrames(clips: VideoClip[], sel: ClipSelection): VideoClip[] {
  if (sel.maxFrames == null) return clips;
  return clips.map((c) => ({ ...c, frames: c.frames.slice(0, sel.maxFrames!) }));
}

/**
 * The PASCAL VOC palette (bit-interleaved, 256 distinct colours, 0 = black), for datasets without their own.
 */
export function vocPalette(): Rgb[] {
  const out: Rgb[] = [];
  for (let i = 0; i < 256; i++) {
    let r = 0, g = 0, b = 0, c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    out.push([r, g, b]);
  }
  return out;
}
