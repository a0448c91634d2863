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
import * as clip from "./clip.ts";

const EXPECTED = "data/<video>/origin/*.jpg and data/<video>/mask/*.png (optional <split>.txt)";

/** VSPW class ids 1..124 with names from `label_num_dic_final.json` when available. */
function vspwClasses(root: string): clip.ClassInfo[] {
  const file = path.join(root, "label_num_dic_final.json");
  const names = new Map<number, string>();
  if (clip.isFile(file)) {
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
export function loadVspw(root: string, sel: clip.ClipSelection = {}): clip.VideoClip[] {
  const dataDir = path.join(root, "data");
  const videos = clip.listDir(dataDir);
  if (videos === null) clip.layoutError(root, "VSPW", EXPECTED);
  const split = sel.split ?? "val";
  const splitFile = path.join(root, `${split}.txt`);
  let available: string[];
  if (clip.isFile(splitFile)) {
    available = fs.readFileSync(splitFile, "utf8").split(/\r?\n/).map((l) => l.trim()).filter((l) =>
      l.length > 0
    );
  } else if (sel.split) {
    fail(splitFile, `split file of split "${sel.split}" not found`);
  } else {
    available = videos.filter((v) => clip.isDir(path.join(dataDir, v)));
  }
  available = clip.sortFrameFiles(available);
  const classes = vspwClasses(root), palette = clip.vocPalette(), ignoreIds = [0, 255];
  const clips = clip.pickClipNames(available, sel, root).map((name): clip.VideoClip => {
    const dir = path.join(dataDir, name), origin = path.join(dir, "origin"), mask = path.join(dir, "mask");
    const files = clip.listDir(origin)?.filter(clip.isImage);
    if (!files || files.length === 0) clip.layoutError(dir, "VSPW", "origin/*.jpg frames in every video");
    const masks = new Set(clip.listDir(mask) ?? []);
    const frames = clip.sortFrameFiles(files).map((f) => ({
      name: clip.stem(f),
      image: path.join(origin, f),
      gt: masks.has(clip.stem(f) + ".png") ? path.join(mask, clip.stem(f) + ".png") : null,
    }));
    return { name, frames, classes, palette, ignoreIds };
  });
  return clip.limitFrames(clips, sel);
}
