/**
 * A plain folder of frames without GT ("single video" mode): either the root holds the images (one clip named
 * after the folder) or each sub-folder holding images is a clip. Frames are ordered by integer file-name prefix
 * when every name has one, else lexicographically. No classes: labels are the K-Means cluster ids.
 * @module
 */
import * as path from "node:path";
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
      const sub = listDir(path.join(root, e));
      if (sub?.some(isImage)) clipDirs.set(e, path.join(root, e));
    }
  }
  if (clipDirs.size === 0) layoutError(root, "frames", expected);
  const palette = vocPalette();
  const clips = pickClipNames([...clipDirs.keys()].sort(), sel, root).map((name): VideoClip => {
    const dir = clipDirs.get(name)!;
    const files = sortFrameFiles(listDir(dir)!.filter(isImage));
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
