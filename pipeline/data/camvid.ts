/**
 * CamVid in the layout of `data/camvid` (SegNet 11-class version): `classes.json` (names, ids, void id, palette),
 * `clips.json` (per clip: name, split, ordered frame file names), `<clip>/images/<frame>.png` (RGB) and
 * `<clip>/labels/<frame>.png` (single-channel class ids; 11 = void, ignored). Split null = every clip listed.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import type { Rgb } from "../tensor/image.ts";
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
  stem,
  type VideoClip,
  vocPalette,
} from "./clip.ts";

const EXPECTED = "classes.json, clips.json and <clip>/images/*.png with <clip>/labels/*.png";

function readJson(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(file, `cannot read JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

/** The clips of a CamVid folder. */
export function loadCamvid(root: string, sel: ClipSelection = {}): VideoClip[] {
  if (!isFile(path.join(root, "classes.json")) || !isFile(path.join(root, "clips.json"))) {
    layoutError(root, "CamVid", EXPECTED);
  }
  const cls = readJson(path.join(root, "classes.json"));
  const names: unknown = cls.names,
    ids: unknown = cls.ids ?? (Array.isArray(names) ? names.map((_, i) => i) : null);
  if (!Array.isArray(names) || !Array.isArray(ids) || names.length !== ids.length) {
    fail(path.join(root, "classes.json"), `expected "names" and "ids" arrays of equal length`);
  }
  const classes: ClassInfo[] = names.map((n, i) => ({ id: Number(ids[i]), name: String(n) }));
  const voidId = cls.void_id ?? cls.ignore_index;
  const palette: Rgb[] = Array.isArray(cls.palette)
    ? cls.palette.map((c: number[]) => [c[0], c[1], c[2]] as Rgb)
    : vocPalette();
  const list = readJson(path.join(root, "clips.json"));
  if (!Array.isArray(list)) fail(path.join(root, "clips.json"), "expected a list of clips");
  const entries = new Map<string, any>();
  for (const entry of list) {
    const name = String(entry?.clip ?? entry?.name ?? "");
    if (!name) fail(path.join(root, "clips.json"), `a clip entry has no "clip" name`);
    if (!sel.split || entry.split === sel.split) entries.set(name, entry);
  }
  if (sel.split && entries.size === 0) fail(path.join(root, "clips.json"), `no clip of split "${sel.split}"`);
  const ignoreIds = voidId == null ? [] : [Number(voidId)];
  const clips = pickClipNames([...entries.keys()], sel, root).map((name): VideoClip => {
    const entry = entries.get(name);
    const dir = path.join(root, name);
    const images = path.join(dir, "images"), labels = path.join(dir, "labels");
    if (!isDir(images) || !isDir(labels)) {
      layoutError(dir, "CamVid", "images/ and labels/ folders in every clip listed in clips.json");
    }
    const files: string[] = Array.isArray(entry.frames)
      ? entry.frames.map(String)
      : listDir(images)!.filter(isImage);
    if (files.length === 0) layoutError(images, "CamVid", "*.png frames");
    const frames = files.map((f) => {
      const image = path.join(images, f), gt = path.join(labels, f);
      if (!isFile(image)) fail(image, "frame listed in clips.json is missing");
      if (!isFile(gt)) fail(gt, "label file of this frame is missing (CamVid labels/<frame>.png)");
      return { name: stem(f), image, gt };
    });
    return { name, frames, classes, palette, ignoreIds };
  });
  return limitFrames(clips, sel);
}
