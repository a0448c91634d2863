/**
 * Cityscapes video snippets: `leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png` (30
 * consecutive frames per snippet) with GT `gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png`
 * on the 20th frame of each snippet only (19 train ids, 255 ignored). One clip per snippet (a run of consecutive
 * frame numbers of one sequence), named after its annotated frame. Default split "val".
 * Note (docs/method.md §13.18): the method needs GT on the first processed frame; the loader only reports where
 * GT exists (frame 19 of 30) and leaves that choice to the caller.
 * @module
 */
import * as path from "node:path";
import { fail } from "../errors.ts";
import type { Rgb } from "../tensor/image.ts";
import {
  type ClipFrame,
  type ClipSelection,
  layoutError,
  limitFrames,
  listDir,
  pickClipNames,
  type VideoClip,
} from "./clip.ts";

const EXPECTED =
  "leftImg8bit_sequence/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelTrainIds.png";

/** The 19 evaluated train ids and their official colours. */
const TRAIN_IDS: [string, Rgb][] = [
  ["road", [128, 64, 128]],
  ["sidewalk", [244, 35, 232]],
  ["building", [70, 70, 70]],
  ["wall", [102, 102, 156]],
  ["fence", [190, 153, 153]],
  ["pole", [153, 153, 153]],
  ["traffic light", [250, 170, 30]],
  ["traffic sign", [220, 220, 0]],
  ["vegetation", [107, 142, 35]],
  ["terrain", [152, 251, 152]],
  ["sky", [70, 130, 180]],
  ["person", [220, 20, 60]],
  ["rider", [255, 0, 0]],
  ["car", [0, 0, 142]],
  ["truck", [0, 0, 70]],
  ["bus", [0, 60, 100]],
  ["train", [0, 80, 100]],
  ["motorcycle", [0, 0, 230]],
  ["bicycle", [119, 11, 32]],
];

const FRAME_RE = /^(.+)_(\d{6})_(\d{6})_leftImg8bit\.png$/;

/** The snippets of a Cityscapes folder. */
export function loadCityscapes(root: string, sel: ClipSelection = {}): VideoClip[] {
  const split = sel.split ?? "val";
  const seqRoot = path.join(root, "leftImg8bit_sequence", split), gtRoot = path.join(root, "gtFine", split);
  const cities = listDir(seqRoot);
  if (cities === null) layoutError(root, "Cityscapes", EXPECTED, `no folder leftImg8bit_sequence/${split}`);
  const classes = TRAIN_IDS.map(([name], id) => ({ id, name }));
  const palette: Rgb[] = TRAIN_IDS.map(([, c]) => c);
  const snippets = new Map<string, ClipFrame[]>();
  for (const city of cities) {
    const files = listDir(path.join(seqRoot, city));
    if (files === null) continue;
    const gtFiles = new Set(listDir(path.join(gtRoot, city)) ?? []);
    const bySeq = new Map<string, { frame: number; file: string }[]>();
    for (const f of files) {
      const m = FRAME_RE.exec(f);
      if (!m) continue;
      const key = `${m[1]}_${m[2]}`;
      if (!bySeq.has(key)) bySeq.set(key, []);
      bySeq.get(key)!.push({ frame: Number(m[3]), file: f });
    }
    for (const [seq, list] of bySeq) {
      list.sort((a, b) => a.frame - b.frame);
      let run: ClipFrame[] = [];
      const flush = () => {
        if (run.length === 0) return;
        const annotated = run.find((f) => f.gt !== null) ?? run[0];
        snippets.set(annotated.name, run);
        run = [];
      };
      list.forEach((x, i) => {
        if (i > 0 && x.frame !== list[i - 1].frame + 1) flush();
        const name = `${seq}_${String(x.frame).padStart(6, "0")}`;
        const gtName = `${name}_gtFine_labelTrainIds.png`;
        run.push({
          name,
          image: path.join(seqRoot, city, x.file),
          gt: gtFiles.has(gtName) ? path.join(gtRoot, city, gtName) : null,
        });
      });
      flush();
    }
  }
  if (snippets.size === 0) {
    layoutError(seqRoot, "Cityscapes", "<city>/<city>_<seq>_<frame>_leftImg8bit.png frames");
  }
  const names = [...snippets.keys()].sort();
  if (![...snippets.values()].some((fr) => fr.some((f) => f.gt !== null))) {
    fail(
      gtRoot,
      "no *_gtFine_labelTrainIds.png for any snippet (create them with cityscapesScripts' createTrainIdLabelImgs)",
    );
  }
  const clips = pickClipNames(names, sel, root).map((name): VideoClip => ({
    name,
    frames: snippets.get(name)!,
    classes,
    palette,
    ignoreIds: [255],
  }));
  return limitFrames(clips, sel);
}
