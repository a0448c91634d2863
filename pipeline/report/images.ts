/**
 * Small RGB image helpers for figures and notebooks: a frame out of a stack, label maps in palette colours,
 * labels blended over a frame, scalar maps as heat maps, and PNG encoding at a display size (sharp). Images
 * are U8 [H, W, 3] tensors throughout.
 * @module
 */
import sharp from "sharp";
import { type Tensor, u8 } from "../tensor/tensor.ts";
import { fullPalette, type Rgb } from "./labels_png.ts";

/** Frame i of a U8 [N, H, W, 3] stack, as a view. */
export function frameOf(frames: Tensor, i: number): Tensor<"U8"> {
  if (frames.dtype !== "U8" || frames.shape.length !== 4 || frames.shape[3] !== 3) {
    throw new Error(`frameOf: expected U8 [N, H, W, 3], got ${frames.dtype} [${frames.shape}]`);
  }
  const [N, H, W] = frames.shape;
  if (i < 0 || i >= N) throw new Error(`frameOf: frame ${i} outside 0..${N - 1}`);
  return u8([H, W, 3], (frames.data as Uint8Array).subarray(i * H * W * 3, (i + 1) * H * W * 3));
}

/** Plane i of a [N, ...rest] label stack (U8 or I32), as a view of its values. */
export function planeOf(stack: Tensor, i: number): Uint8Array | Int32Array {
  const per = stack.shape.slice(1).reduce((a, b) => a * b, 1);
  return (stack.data as Uint8Array | Int32Array).subarray(i * per, (i + 1) * per);
}

/** Label values [H·W] in palette colours (ids outside the palette use the VOC default colours). */
export function colorizeLabels(
  labels: ArrayLike<number>,
  H: number,
  W: number,
  palette: readonly Rgb[] = [],
): Tensor<"U8"> {
  if (labels.length !== H * W) throw new Error(`colorizeLabels: ${labels.length} labels for ${H}×${W}`);
  const pal = fullPalette(palette);
  const out = u8([H, W, 3]);
  for (let i = 0; i < H * W; i++) {
    const c = pal[labels[i] & 255];
    out.data[i * 3] = c[0];
    out.data[i * 3 + 1] = c[1];
    out.data[i * 3 + 2] = c[2];
  }
  return out;
}

/**
 * Labels [h·w] (any grid; nearest-sampled to the frame) blended over a frame [H, W, 3]:
 * (1 − alpha)·frame + alpha·colour.
 */
export function overlayLabels(
  frame: Tensor<"U8">,
  labels: ArrayLike<number>,
  h: number,
  w: number,
  palette: readonly Rgb[] = [],
  alpha = 0.5,
): Tensor<"U8"> {
  const [H, W] = frame.shape;
  if (labels.length !== h * w) throw new Error(`overlayLabels: ${labels.length} labels for ${h}×${w}`);
  const pal = fullPalette(palette);
  const out = u8([H, W, 3]);
  for (let y = 0; y < H; y++) {
    const ly = Math.min(h - 1, Math.floor((y * h) / H));
    for (let x = 0; x < W; x++) {
      const c = pal[labels[ly * w + Math.min(w - 1, Math.floor((x * w) / W))] & 255];
      const o = (y * W + x) * 3;
      for (let k = 0; k < 3; k++) {
        out.data[o + k] = Math.round((1 - alpha) * frame.data[o + k] + alpha * c[k]);
      }
    }
  }
  return out;
}

/** Viridis at 9 evenly spaced stops (matplotlib's values), linearly interpolated. */
const VIRIDIS: Rgb[] = [
  [68, 1, 84],
  [71, 45, 123],
  [59, 82, 139],
  [44, 114, 142],
  [33, 145, 140],
  [40, 174, 128],
  [94, 201, 98],
  [173, 220, 48],
  [253, 231, 37],
];

/** Colour of t ∈ [0, 1] on the heat-map scale. */
export function heatColor(t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k]))) as unknown as Rgb;
}

/** Scalar map [H·W] as a heat map; `range` defaults to [0, max] (a map of zeros stays dark). */
export function heatmap(
  values: ArrayLike<number>,
  H: number,
  W: number,
  range?: [number, number],
): Tensor<"U8"> {
  if (values.length !== H * W) throw new Error(`heatmap: ${values.length} values for ${H}×${W}`);
  let lo = 0, hi = 0;
  if (range) [lo, hi] = range;
  else for (let i = 0; i < values.length; i++) if (values[i] > hi) hi = values[i];
  const span = hi - lo;
  const lut = Array.from({ length: 256 }, (_, i) => heatColor(i / 255));
  const out = u8([H, W, 3]);
  for (let i = 0; i < H * W; i++) {
    const t = span > 0 ? Math.min(255, Math.max(0, Math.round((255 * (values[i] - lo)) / span))) : 0;
    const c = lut[t];
    out.data[i * 3] = c[0];
    out.data[i * 3 + 1] = c[1];
    out.data[i * 3 + 2] = c[2];
  }
  return out;
}

/** An RGB image [h, w, 3] from interleaved bytes [h·w·3] (e.g. PCA colours of a feature grid). */
export function rgbImage(bytes: Uint8Array, h: number, w: number): Tensor<"U8"> {
  if (bytes.length !== h * w * 3) throw new Error(`rgbImage: ${bytes.length} bytes for ${h}×${w}×3`);
  return u8([h, w, 3], bytes);
}

/** PNG of an image resized to width × height: nearest for label/grid images (`blocky`), Lanczos otherwise. */
export async function pngAt(
  img: Tensor<"U8">,
  width: number,
  height: number,
  blocky = false,
): Promise<Uint8Array> {
  const [H, W] = img.shape;
  const C = img.shape.length === 2 ? 1 : img.shape[2];
  let s = sharp(img.data, { raw: { width: W, height: H, channels: C as 1 | 3 } });
  if (W !== width || H !== height) {
    s = s.resize(width, height, { fit: "fill", kernel: blocky ? "nearest" : "lanczos3" });
  }
  const buf = await s.png({ compressionLevel: 6 }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Legend entries {colour, label} for the label values present, named by `classes`; `ignored` ids (the
 * dataset's void values) read "ignored (<id>)", any other unknown id "label <id>".
 */
export function labelLegend(
  present: Iterable<number>,
  classes: readonly { id: number; name: string }[],
  palette: readonly Rgb[] = [],
  ignored: readonly number[] = [],
): { color: Rgb; label: string }[] {
  const pal = fullPalette(palette);
  const names = new Map(classes.map((c) => [c.id, c.name]));
  return [...new Set(present)].sort((a, b) => a - b).map((id) => ({
    color: pal[id & 255],
    label: names.get(id) ?? (ignored.includes(id) ? `ignored (${id})` : `label ${id}`),
  }));
}

/** Distinct values of label arrays, ascending. */
export function presentLabels(...maps: ArrayLike<number>[]): number[] {
  const s = new Set<number>();
  for (const m of maps) for (let i = 0; i < m.length; i++) s.add(m[i]);
  return [...s].sort((a, b) => a - b);
}
