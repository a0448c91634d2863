/**
 * A plain folder of frames without GT ("single video" mode): either the root holds the images (one clip named
 * after the folder) or each sub-folder holding images is a clip. Frames are ordered by integer file-name prefix
 * when every name has one, else lexicographically. No classes: labels are the K-Means cluster ids.
 *
 * Nothing is dropped in silence: files that are not frames (another image format, any other file) are
 * counted in one note per folder, an unreadable frame or clip folder is a UserError found while listing.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import {
  type ClipSelection,
  IMAGE_EXTS,
  isImage,
  layoutError,
  limitFrames,
  listDir,
  pickClipNames,
  sortFrameFiles,
  stem,
  type VideoClip,
  vocPalette,
} from "./clip.ts";

/** The clips of a frames folder. */
export function loadFrames(root: string, sel: ClipSelection = {}): VideoClip[] {
  const entries = listDir(root);
  const expected = `image files (${IMAGE_EXTS.join(", ")}) in the folder or in its sub-folders`;
  if (entries === null) layoutError(root, "frames", expected);
  const clipDirs = new Map<string, string>();
  if (entries.some(isImage)) clipDirs.set(path.basename(path.resolve(root)), root);
  else {
    for (const e of entries) {
      const p = path.join(root, e);
      if (!isFolder(p)) continue;
      const sub = listDir(p);
      if (sub === null) {
        fail(p, "cannot read this clip folder (permission denied); expected a readable folder of frames");
      }
      if (sub.some(isImage)) clipDirs.set(e, p);
    }
  }
  if (clipDirs.size === 0) layoutError(root, "frames", expected);
  const palette = vocPalette();
  const clips = pickClipNames([...clipDirs.keys()].sort(), sel, root).map((name): VideoClip => {
    const dir = clipDirs.get(name)!;
    const all = listDir(dir)!;
    const files = sortFrameFiles(all.filter(isImage));
    checkReadable(dir, files);
    checkUniqueNames(dir, files);
    noteSkipped(dir, all.filter((f) => !isImage(f) && !f.startsWith(".") && !isFolder(path.join(dir, f))));
    return {
      name,
      frames: files.map((f) => ({ name: stem(f), image: path.join(dir, f), gt: null })),
      classes: [],
      palette,
      ignoreIds: [],
    };
  });
  return limitFrames(clips, sel);
}

function isFolder(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Every frame must be a readable file: one error naming the first unreadable one and how many there are. */
function checkReadable(dir: string, files: readonly string[]): void {
  const bad = files.filter((f) => {
    try {
      fs.accessSync(path.join(dir, f), fs.constants.R_OK);
      return !fs.statSync(path.join(dir, f)).isFile();
    } catch {
      return true;
    }
  });
  if (bad.length) {
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more frame(s) of this folder)` : "";
    fail(
      path.join(dir, bad[0]),
      `cannot read this frame (permission denied or not a file)${more}; expected readable image files`,
    );
  }
}

/** Outputs are named after frame stems: two images with one stem (a.png, a.jpg) would write one label map. */
function checkUniqueNames(dir: string, files: readonly string[]): void {
  const seen = new Map<string, string>();
  for (const f of files) {
    const s = stem(f);
    const other = seen.get(s);
    if (other !== undefined) {
      fail(
        path.join(dir, f),
        `two frames are named "${s}" (${other}, ${f}); expected one image per frame name`,
      );
    }
    seen.set(s, f);
  }
}

/** Folders already noted in this process (the listing runs several times per command). */
const noted = new Set<string>();

/** One note per folder: how many files are not frames, which, and why. */
function noteSkipped(dir: string, skipped: readonly string[]): void {
  if (!skipped.length || noted.has(dir)) return;
  noted.add(dir);
  const shown = skipped.slice(0, 4).join(", ") + (skipped.length > 4 ? ", …" : "");
  console.error(
    `note: ${dir}: skipped ${skipped.length} file(s) that are not frames (${shown}); frames are ${
      IMAGE_EXTS.join(", ")
    }`,
  );
}
