/**
 * Image files ↔ U8 tensors. Colour frames (PNG/JPEG/…) go through npm `sharp` → [H, W, 3] RGB. Label maps are
 * single-channel PNGs whose *stored sample values* are class ids (grey, mode L, or palette indices, mode P);
 * sharp would expand a palette to colours, so label PNGs are decoded and encoded here with node:zlib.
 * Any unreadable, corrupt or truncated file is a UserError naming the file.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import sharp from "sharp";
import { fail } from "../errors.ts";
import { type Tensor, u8 } from "./tensor.ts";

/** An RGB colour. */
export type Rgb = readonly [number, number, number];

function readBytes(file: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    const code = (e as { code?: string }).code;
    fail(
      file,
      code === "ENOENT" ? "image file not found" : `cannot read image file (${code ?? (e as Error).message})`,
    );
  }
}

/** Read a colour image (any format sharp decodes) as U8 [H, W, 3] RGB; alpha is dropped, grey is expanded. */
export async function readImage(file: string): Promise<Tensor<"U8">> {
  const bytes = readBytes(file);
  try {
    const { data, info } = await sharp(bytes, { failOn: "truncated" }).removeAlpha().toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) fail(file, `decoded to ${info.channels} channels, expected RGB`);
    return u8(
      [info.height, info.width, 3],
      new Uint8Array(data.buffer, data.byteOffset, data.length).slice(),
    );
  } catch (e) {
    if ((e as Error).name === "UserError") throw e;
    fail(
      file,
      `cannot decode image (${oneLine((e as Error).message)}); expected a complete PNG/JPEG/WebP/TIFF file`,
    );
  }
}

/** Size {width, height} of an image file without decoding its pixels. */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  const bytes = readBytes(file);
  try {
    const m = await sharp(bytes).metadata();
    if (!m.width || !m.height) fail(file, "image has no size");
    return { width: m.width, height: m.height };
  } catch (e) {
    if ((e as Error).name === "UserError") throw e;
    fail(
      file,
      `cannot decode image (${oneLine((e as Error).message)}); expected a complete PNG/JPEG/WebP/TIFF file`,
    );
  }
}

/** Write U8 [H, W, 3] or [H, W] as PNG or JPEG (by extension; JPEG quality 75 like PIL's default). */
export async function writeImage(
  file: string,
  t: Tensor<"U8">,
  opts: { quality?: number } = {},
): Promise<void> {
  const [H, W] = t.shape;
  const C = t.shape.length === 2 ? 1 : t.shape[2];
  if ((t.shape.length !== 2 && t.shape.length !== 3) || (C !== 1 && C !== 3)) {
    throw new Error(`writeImage: expected U8 [H, W] or [H, W, 3], got [${t.shape}]`);
  }
  const ext = path.extname(file).toLowerCase();
  let img = sharp(t.data, { raw: { width: W, height: H, channels: C as 1 | 3 } });
  if (ext === ".png") img = img.png();
  else if (ext === ".jpg" || ext === ".jpeg") img = img.jpeg({ quality: opts.quality ?? 75 });
  else fail(file, `unsupported image extension "${ext}" (expected .png, .jpg or .jpeg)`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await img.toBuffer());
}

/** Read a single-channel label PNG (grey or palette, 1–8 bits) as U8 [H, W] of stored values (class ids). */
export function readLabelImage(file: string): Tensor<"U8"> {
  return decodeLabelPng(readBytes(file), file);
}

/** Decode label PNG bytes (`where` names the source in errors). */
export function decodeLabelPng(bytes: Uint8Array, where: string): Tensor<"U8"> {
  const bad = (what: string): never => fail(where, `not a readable label PNG: ${what}`);
  const SIG = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 8 || SIG.some((b, i) => bytes[i] !== b)) bad("missing PNG signature");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 8, width = 0, height = 0, depth = 0, ctype = -1, interlace = 0, ended = false;
  const idat: Uint8Array[] = [];
  while (off < bytes.length) {
    if (off + 12 > bytes.length) bad("truncated chunk header");
    const len = dv.getUint32(off);
    const type = String.fromCharCode(...bytes.subarray(off + 4, off + 8));
    if (off + 12 + len > bytes.length) bad(`truncated ${type} chunk`);
    const body = bytes.subarray(off + 8, off + 8 + len);
    if (crc32(bytes.subarray(off + 4, off + 8 + len)) !== dv.getUint32(off + 8 + len)) {
      bad(`CRC mismatch in ${type} chunk`);
    }
    if (type === "IHDR") {
      width = dv.getUint32(off + 8);
      height = dv.getUint32(off + 12);
      depth = body[8];
      ctype = body[9];
      interlace = body[12];
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") {
      ended = true;
      break;
    }
    off += 12 + len;
  }
  if (!ended) bad("truncated (no IEND chunk)");
  if (ctype !== 0 && ctype !== 3) {
    bad(
      `colour type ${ctype} (${
        ctype === 2 ? "RGB" : ctype === 6 ? "RGBA" : "grey+alpha"
      }); expected single-channel grey or palette`,
    );
  }
  if (depth > 8) bad(`${depth}-bit samples; expected at most 8 bits`);
  if (interlace !== 0) bad("interlaced PNG is not supported");
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(zlib.inflateSync(concatBytes(idat)));
  } catch (e) {
    return bad(`corrupt image data (${oneLine((e as Error).message)})`);
  }
  const stride = Math.ceil((width * depth) / 8);
  if (raw.length < height * (stride + 1)) bad("truncated image data");
  const out = new Uint8Array(width * height);
  let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)];
    cur.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    unfilter(ft, cur, prev, 1, where);
    const perByte = 8 / depth, mask = (1 << depth) - 1;
    for (let x = 0; x < width; x++) {
      out[y * width + x] = depth === 8
        ? cur[x]
        : (cur[Math.floor(x / perByte)] >> (8 - depth * (1 + (x % perByte)))) & mask;
    }
    [prev, cur] = [cur, prev];
  }
  return u8([height, width], out);
}

function unfilter(ft: number, cur: Uint8Array, prev: Uint8Array, bpp: number, where: string): void {
  const n = cur.length;
  switch (ft) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) cur[i] = (cur[i] + cur[i - bpp]) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + prev[i]) & 255;
      return;
    case 3:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + ((i >= bpp ? cur[i - bpp] : 0) + prev[i] >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        cur[i] = (cur[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      fail(where, `not a readable label PNG: bad filter type ${ft}`);
  }
}

/**
 * Encode U8 [H, W] label values as an 8-bit PNG: palette mode (PLTE = `palette`, missing entries black) when a
 * palette is given, grey otherwise. The stored values are the labels either way.
 */
export function encodeLabelPng(labels: Tensor<"U8">, palette?: readonly Rgb[]): Uint8Array {
  if (labels.shape.length !== 2) throw new Error(`encodeLabelPng: expected U8 [H, W], got [${labels.shape}]`);
  const [H, W] = labels.shape;
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, W);
  dv.setUint32(4, H);
  ihdr[8] = 8;
  ihdr[9] = palette ? 3 : 0;
  const raw = new Uint8Array(H * (W + 1));
  for (let y = 0; y < H; y++) raw.set(labels.data.subarray(y * W, (y + 1) * W), y * (W + 1) + 1);
  const chunks = [chunk("IHDR", ihdr)];
  if (palette) {
    const plte = new Uint8Array(256 * 3);
    palette.slice(0, 256).forEach((c, i) => plte.set(c, i * 3));
    chunks.push(chunk("PLTE", plte));
  }
  chunks.push(chunk("IDAT", new Uint8Array(zlib.deflateSync(raw))), chunk("IEND", new Uint8Array(0)));
  return concatBytes([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), ...chunks]);
}

/** Write a label PNG (see `encodeLabelPng`), creating the folder. */
export function writeLabelImage(file: string, labels: Tensor<"U8">, palette?: readonly Rgb[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encodeLabelPng(labels, palette));
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

function oneLine(s: string): string {
  return s.split("\n")[0].trim();
}
