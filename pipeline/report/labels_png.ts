/**
 * Predicted label maps as indexed ("palette") PNGs: pixel value = class id, PLTE = class colours. Such a
 * file shows colours in any viewer and still yields the raw ids in PIL/numpy (mode "P"), as VOC/VSPW do.
 * The PNG encoding is `encodeLabelPng` of pipeline/tensor/image.ts; this module adds the default palette
 * and the per-frame file layout.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeLabelPng } from "../tensor/image.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";

/** An RGB colour. */
export type Rgb = readonly [number, number, number];

/**
 * The VOC-style default palette (bit-interleaved, 256 distinct colours; 0 = black). Used when a labels
 * stage does not provide its dataset's palette.
 */
export function defaultPalette(): Rgb[] {
  return Array.from({ length: 256 }, (_, id) => {
    const c: [number, number, number] = [0, 0, 0];
    for (let j = 0, v = id; v > 0 && j < 8; j++, v >>= 3) {
      for (let ch = 0; ch < 3; ch++) c[ch] |= ((v >> ch) & 1) << (7 - j);
    }
    return c;
  });
}

/** A full 256-entry palette: `palette` first, the default palette for the ids it does not cover. */
export function fullPalette(palette: readonly Rgb[] = []): Rgb[] {
  const fallback = defaultPalette();
  return fallback.map((c, i) => palette[i] ?? c);
}

/**
 * Write each frame of a [F, H, W] label tensor (U8, or I32 with ids in 0..255) to `<dir>/<frame>.png`.
 * `frames` names the files (default frame_0000…). Returns the paths written.
 */
export function writeLabelMaps(
  dir: string,
  labels: Tensor,
  frames?: readonly string[],
  palette: readonly Rgb[] = defaultPalette(),
): string[] {
  if (labels.shape.length !== 3 || (labels.dtype !== "U8" && labels.dtype !== "I32")) {
    throw new Error(
      `writeLabelMaps: expected labels U8/I32 [F, H, W], got ${labels.dtype} [${labels.shape}]`,
    );
  }
  const [F, H, W] = labels.shape;
  if (frames && frames.length !== F) {
    throw new Error(`writeLabelMaps: ${frames.length} frame names for ${F} frames`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const colours = fullPalette(palette);
  const plane = u8([H, W]); // reused for every frame
  const written: string[] = [];
  for (let f = 0; f < F; f++) {
    const src = labels.data.subarray(f * H * W, (f + 1) * H * W) as Uint8Array | Int32Array;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v < 0 || v > 255) throw new Error(`writeLabelMaps: label ${v} of frame ${f} is outside 0..255`);
      plane.data[i] = v;
    }
    const name = path.basename(frames?.[f] ?? `frame_${String(f).padStart(4, "0")}`).replace(
      /\.[A-Za-z0-9]+$/,
      "",
    );
    const file = path.join(dir, `${name}.png`);
    fs.writeFileSync(file, encodeLabelPng(plane, colours));
    written.push(file);
  }
  return written;
}
