/**
 * What `segment` writes for a clip when asked: per-frame palette PNGs of the cluster ids, a legend and an overlay
 * GIF preview. (Video files are decoded by pipeline/data/video.ts.)
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { type Rgb, writeLabelMaps } from "../report/labels_png.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Frame i blended 50/50 with its label colours, as RGB bytes. */
function overlay(frame: Uint8Array, labels: Uint8Array, palette: readonly Rgb[], out: Uint8Array): void {
  for (let i = 0; i < labels.length; i++) {
    const c = palette[labels[i]];
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = (frame[i * 3 + ch] + c[ch]) >> 1;
  }
}

/** A legend PNG: one swatch row per label id. */
async function writeLegend(file: string, labels: readonly number[], palette: readonly Rgb[]): Promise<void> {
  const rowH = 24, W = 160, H = rowH * labels.length;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  labels.forEach((l, i) => {
    const [r, g, b] = palette[l];
    svg.push(`<rect x="4" y="${i * rowH + 4}" width="32" height="${rowH - 8}" fill="rgb(${r},${g},${b})"/>`);
    svg.push(`<text x="44" y="${i * rowH + 17}" font-family="sans-serif" font-size="13">cluster ${l}</text>`);
  });
  svg.push("</svg>");
  await sharp(new TextEncoder().encode(svg.join(""))).png().toFile(file);
}

/** Most frames in the overlay GIF preview. */
const MAX_GIF_FRAMES = 240;

/**
 * Palette PNGs, legend and overlay GIF of one clip's label maps [N, H, W] into `dir`; returns the summary line,
 * naming `shown` (where the files will be once a staged output folder is swapped in; default `dir`).
 */
export async function writeClipOutputs(
  dir: string,
  labels: Tensor<"U8">,
  names: readonly string[],
  labelSet: readonly number[],
  images: readonly string[],
  palette: readonly Rgb[],
  shown: string = dir,
): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  writeLabelMaps(path.join(dir, "labels"), labels, names, palette);
  await writeLegend(path.join(dir, "legend.png"), labelSet, palette);
  // Overlay GIF at the original size: frames re-read at full resolution. A preview, so a long video contributes
  // at most MAX_GIF_FRAMES evenly spaced frames (the GIF is built in memory).
  const [N, H, W] = labels.shape;
  const step = Math.ceil(N / MAX_GIF_FRAMES);
  const picked = Array.from({ length: Math.ceil(N / step) }, (_, i) => i * step);
  const tall = new Uint8Array(picked.length * H * W * 3);
  for (const [j, f] of picked.entries()) {
    // Decoded as tolerantly as the frames stage did (a frame it accepted must not fail here).
    const raw = await sharp(images[f], { failOn: "truncated" }).removeAlpha().resize(W, H).raw().toBuffer();
    overlay(
      raw,
      labels.data.subarray(f * H * W, (f + 1) * H * W),
      palette,
      tall.subarray(j * H * W * 3, (j + 1) * H * W * 3),
    );
  }
  await sharp(tall, { raw: { width: W, height: picked.length * H, channels: 3, pageHeight: H } })
    .gif({ delay: Array(picked.length).fill(100 * step), loop: 0 })
    .toFile(path.join(dir, "overlay.gif"));
  const every = step > 1 ? ` of every ${step}th frame` : "";
  return `results: ${shown}/labels/*.png (${N} frames, ${labelSet.length} clusters), overlay.gif${every}, legend.png`;
}
