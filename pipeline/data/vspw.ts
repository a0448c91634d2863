/**
 * VSPW (480p release): `data/<video>/origin/*.jpg` frames and `data/<video>/mask/*.png` GT (palette PNG, value =
 * class id 1..124; 0 = "others" and 255 = void, both ignored). The split (default "val") lists its videos in
 * `<root>/<split>.txt`; without that file every video under `data/` is used. Frames are ordered by their integer
 * file name. Class names come from `label_num_dic_final.json` ({name: id}) when present.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import {
  type ClassInfo,
  type ClipSelection,
  isDir,
  isFile,
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

const EXPECTED = "data/<video>/origin/*.jpg and data/<video>/mask/*.png (optional <split>.txt)";

/** VSPW class ids 1..124 with names from `label_num_dic_final.json` when available. */
function vspwClasses(root: string): ClassInfo[] {
  const file = path.join(root, "label_num_dic_final.json");
  const names = new Map<number, string>();
  if (isFile(file)) {
    try {
      for (const [name, id] of Object.entries(JSON.parse(fs.readFileSync(file, "utf8")))) {
        names.set(Number(id), name);
      }
    } catch (e) {
      fail(file, `cannot read JSON (${(e as Error).message.split("\n")[0]})`);
    }
  }
  return Array.from({ length: 124 }, (_, i) => ({ id: i + 1, name: names.get(i + 1) ?? `class_${i + 1}` }));
}

/** The videos of a VSPW folder. */
export function loadVspw(root: string, sel: ClipSelection = {}): VideoClip[] {
  const dataDir = path.join(root, "data");
  const videos = listDir(dataDir);
  if (videos === null) layoutError(root, "VSPW", EXPECTED);
  const split = sel.split ?? "val";
  const splitFile = path.join(root, `${split}.txt`);
  let available: string[];
  if (isFile(splitFile)) {
    available = fs.readFileSync(splitFile, "utf8").split(/\r?\n/).map((l) => l.trim()).filter((l) =>
      l.length > 0
    );
  } else if (sel.split) {
    fail(splitFile, `split file of split "${sel.split}" not found`);
  } else {
    available = videos.filter((v) => isDir(path.join(dataDir, v)));
  }
  available = sortFrameFiles(available);
  const classes = vspwClasses(root), palette = vocPalette(), ignoreIds = [0, 255];
  const clips = pickClipNames(available, sel, root).map((name): VideoClip => {
    const dir = path.join(dataDir, name), origin = path.join(dir, "origin"), mask = path.join(dir, "mask");
    const files = listDir(origin)?.filter(isImage);
    if (!files || files.length === 0) layoutError(dir, "VSPW", "origin/*.jpg frames in every video");
    const masks = new Set(listDir(mask) ?? []);
    const frames = sortFrameFiles(files).map((f) => ({
      name: stem(f),
      image: path.join(origin, f),
      gt: masks.has(stem(f) + ".png") ? path.join(mask, stem(f) + ".png") : null,
    }));
    return { name, frames, classes, palette, ignoreIds };
  });
  return limitFrames(clips, sel);
}
