/**
 * A deterministic synthetic video with exact GT, for tests, benchmarks and notebooks that must run without data
 * or a diffusion model: a panning sky/road background, a textured car driving across, and a person that walks
 * towards the camera (grows) and passes behind the car (occlusion). `syntheticFeatures` turns a video into
 * feature maps on a coarse grid the way a diffusion backbone's would look to the segmentation: class content of
 * each cell + codes of the surface patches it shows (local appearance that moves with its object) + Gaussian noise.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createRng } from "../seg/rng.ts";
import { type Rgb, writeImage, writeLabelImage } from "../tensor/image.ts";
import { f32, type Tensor, u8 } from "../tensor/tensor.ts";
import type { ClassInfo } from "./clip.ts";

/** Classes of the synthetic scene. */
export const SYNTHETIC_CLASSES: ClassInfo[] = [
  { id: 0, name: "sky" },
  { id: 1, name: "road" },
  { id: 2, name: "car" },
  { id: 3, name: "person" },
];

/** Their colours (CamVid-like). */
export const SYNTHETIC_PALETTE: Rgb[] = [[128, 128, 128], [128, 64, 128], [64, 0, 128], [64, 64, 0]];

/** Size and seed of a synthetic video. */
export interface SyntheticOptions {
  frames?: number;
  height?: number;
  width?: number;
  seed?: number;
}

/** Frames U8 [N, H, W, 3] and GT U8 [N, H, W]. */
export interface SyntheticVideo {
  frames: Tensor<"U8">;
  gt: Tensor<"U8">;
  /**
   * I32 [N, H, W]: id of the physical surface patch (object, 8×8 cell of its texture coordinates) each pixel
   * shows; it moves and scales with its object, so features built from it track like real local appearance.
   */
  surface: Tensor<"I32">;
  classes: ClassInfo[];
  palette: Rgb[];
  ignoreIds: number[];
}

/** Integer hash → [0, 1) (texture grain; position-locked, so it moves with its object). */
function grain(x: number, y: number, s: number): number {
  let h = Math.imul(x | 0, 374761393) ^ Math.imul(y | 0, 668265263) ^ Math.imul(s, 982451653);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Surface patch id of object `o` at texture coordinates (u, v). */
function patchId(o: number, u: number, v: number): number {
  return o * 1048576 + (Math.floor(u / 8) & 1023) * 1024 + (Math.floor(v / 8) & 1023);
}

/** A smooth two-wave texture around a base colour, in object coordinates (u, v). */
function texture(base: Rgb, u: number, v: number, period: number, phase: number, s: number): Rgb {
  const w = Math.sin((2 * Math.PI * u) / period + phase) * Math.cos((2 * Math.PI * v) / (period * 1.3));
  const g = (grain(u, v, s) - 0.5) * 16;
  return [base[0] + 40 * w + g, base[1] + 30 * w + g, base[2] - 30 * w + g];
}

/** Generate the video. Deterministic for given options. */
export function syntheticVideo(opts: SyntheticOptions = {}): SyntheticVideo {
  const N = opts.frames ?? 28, H = opts.height ?? 128, W = opts.width ?? 192, seed = opts.seed ?? 1;
  const rng = createRng(seed);
  const horizon = Math.round(H * (0.42 + 0.06 * rng.uniform()));
  const car = { x0: W * (0.05 + 0.1 * rng.uniform()), y: H * 0.55, w: W * 0.3, h: H * 0.22, vx: W * 0.004 };
  const person = { x0: W * 0.7, y0: H * 0.5, r0: H * 0.16, vx: -W * 0.004, grow: 0.01 };
  const frames = new Uint8Array(N * H * W * 3),
    gt = new Uint8Array(N * H * W),
    surface = new Int32Array(N * H * W);
  for (let t = 0; t < N; t++) {
    const pan = 0.5 * t; // camera pan: background textures slide left
    const cx = car.x0 + car.vx * t;
    const px = person.x0 + person.vx * t, pr = person.r0 * (1 + person.grow * t), py = person.y0 + 0.3 * pr;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let cls: number, col: Rgb, sid: number;
        if (y < horizon) {
          (cls = 0),
            (col = texture([150, 170, 200], x + pan, y, 70, 0.3, seed)),
            (sid = patchId(0, x + pan, y));
        } else {(cls = 1),
            (col = texture([110, 90, 110], x + pan, y * 2, 30, 1.1, seed + 1)),
            (sid = patchId(1, x + pan, y));}
        const dx = (x - px) / (pr * 0.6), dy = (y - py) / pr;
        if (dx * dx + dy * dy <= 1) {
          const u = ((x - px) / pr) * 20, v = ((y - py) / pr) * 20;
          (cls = 3),
            (col = texture([90, 110, 40], u, v, 18, 2, seed + 3)),
            (sid = patchId(3, u + 40, v + 40));
        }
        if (x >= cx && x < cx + car.w && y >= car.y && y < car.y + car.h) {
          (cls = 2),
            (col = texture([70, 30, 150], x - cx, y - car.y, 26, 0.7, seed + 2)),
            (sid = patchId(2, x - cx, y - car.y));
        }
        const p = (t * H + y) * W + x;
        gt[p] = cls;
        surface[p] = sid;
        for (let c = 0; c < 3; c++) frames[p * 3 + c] = Math.max(0, Math.min(255, Math.round(col[c])));
      }
    }
  }
  return {
    frames: u8([N, H, W, 3], frames),
    gt: u8([N, H, W], gt),
    surface: { dtype: "I32", shape: [N, H, W], data: surface },
    classes: SYNTHETIC_CLASSES,
    palette: SYNTHETIC_PALETTE,
    ignoreIds: [],
  };
}

/** How synthetic features are made. */
export interface SyntheticFeatureOptions {
  /** Grid rows and columns (the frame is split into equal cells). */
  gridH: number;
  gridW: number;
  /** Channels. */
  channels?: number;
  /** Weight of the class-content part (class embeddings mixed by the cell's GT fractions). */
  classWeight?: number;
  /** Weight of the appearance part (random codes of the surface patches the cell shows, mixed by area). */
  appearanceWeight?: number;
  /** Standard deviation of the per-channel Gaussian noise. */
  noise?: number;
  /** Seed of the class embeddings and patch codes (same seed = same "backbone"). */
  seed?: number;
  /** Seed of the noise (e.g. differs between the KNN and CBR feature blocks). */
  noiseSeed?: number;
}

/**
 * Features F32 [N, gridH·gridW, C] of a synthetic video: classWeight·Σ_class fraction·E[class] +
 * appearanceWeight·Σ_patch fraction·code[patch] + noise, with E and code i.i.d. N(0, ¼) vectors. Like real
 * diffusion features they are similar within a class, carry local appearance that moves (and scales) with its
 * object, and are noisy.
 */
export function syntheticFeatures(video: SyntheticVideo, o: SyntheticFeatureOptions): Tensor<"F32"> {
  const [N, H, W] = video.gt.shape;
  const C = o.channels ?? 32, K = video.classes.length;
  const cw = o.classWeight ?? 1, aw = o.appearanceWeight ?? 0.5, sigma = o.noise ?? 0.2, seed = o.seed ?? 7;
  const rng = createRng(seed), noise = createRng(o.noiseSeed ?? 11);
  const embed = new Float64Array(K * C).map(() => rng.normal() * 0.5);
  const codes = new Map<number, Float64Array>();
  const codeOf = (id: number) => {
    let c = codes.get(id);
    if (!c) {
      const r = createRng(Math.imul(id, 0x9e3779b1) ^ seed);
      codes.set(id, c = new Float64Array(C).map(() => r.normal() * 0.5));
    }
    return c;
  };
  const hw = o.gridH * o.gridW, out = new Float32Array(N * hw * C);
  const frac = new Float64Array(K), acc = new Float64Array(C), patches = new Map<number, number>();
  for (let t = 0; t < N; t++) {
    for (let gy = 0; gy < o.gridH; gy++) {
      for (let gx = 0; gx < o.gridW; gx++) {
        const y0 = Math.floor((gy * H) / o.gridH), y1 = Math.floor(((gy + 1) * H) / o.gridH);
        const x0 = Math.floor((gx * W) / o.gridW), x1 = Math.floor(((gx + 1) * W) / o.gridW);
        frac.fill(0);
        patches.clear();
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const p = (t * H + y) * W + x;
            frac[video.gt.data[p]]++;
            const id = video.surface.data[p];
            patches.set(id, (patches.get(id) ?? 0) + 1);
          }
        }
        const area = (y1 - y0) * (x1 - x0);
        acc.fill(0);
        for (const [id, n] of patches) {
          const code = codeOf(id);
          for (let c = 0; c < C; c++) acc[c] += (n / area) * code[c];
        }
        const o0 = (t * hw + gy * o.gridW + gx) * C;
        for (let c = 0; c < C; c++) {
          let v = aw * acc[c];
          for (let k = 0; k < K; k++) v += (frac[k] / area) * embed[k * C + c] * cw;
          out[o0 + c] = v + sigma * noise.normal();
        }
      }
    }
  }
  return f32([N, hw, C], out);
}

/**
 * A stand-in for the masked-modulation passes of one frame: the decoded ± images for label L differ where the
 * frame shows the same class as nearby grid cells whose coarse label is L (a cell's "modulation" spreads over the
 * object it covers, like the diffusion model's response), by ±`amplitude`·D_L with
 * D_L(p) = Σ_{cells c near p, coarse(c) = L, gtGrid(c) = gt(p)} k(p, c) / Σ_{cells c near p} k(p, c) and k a
 * Gaussian of the distance to the cell centre (σ = 1 cell, cells within 2). `amplitude` < 8 keeps every channel difference
 * below 16, the range where the reference's uint8 arithmetic is exact.
 */
export function syntheticModulationPairs(
  frame: Tensor<"U8">,
  gt: Tensor<"U8">,
  coarse: ArrayLike<number>,
  gtGrid: ArrayLike<number>,
  grid: { h: number; w: number },
  labels: readonly number[],
  amplitude = 5,
): { plus: Tensor<"U8">; minus: Tensor<"U8"> }[] {
  const [H, W] = gt.shape, ch = H / grid.h, cw = W / grid.w;
  const resp = labels.map(() => new Float64Array(H * W));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const gy = Math.floor(y / ch), gx = Math.floor(x / cw), p = y * W + x;
      let norm = 0;
      for (let cy = Math.max(0, gy - 2); cy <= Math.min(grid.h - 1, gy + 2); cy++) {
        for (let cx = Math.max(0, gx - 2); cx <= Math.min(grid.w - 1, gx + 2); cx++) {
          const dy = (y + 0.5) / ch - (cy + 0.5), dx = (x + 0.5) / cw - (cx + 0.5);
          const k = Math.exp(-(dx * dx + dy * dy) / 2), c = cy * grid.w + cx;
          norm += k;
          const li = labels.indexOf(coarse[c]);
          if (li >= 0 && gtGrid[c] === gt.data[p]) resp[li][p] += k;
        }
      }
      for (const r of resp) r[p] /= norm;
    }
  }
  return resp.map((r) => {
    const plus = new Uint8Array(H * W * 3), minus = new Uint8Array(H * W * 3);
    for (let i = 0; i < H * W * 3; i++) {
      const d = Math.round(amplitude * r[Math.floor(i / 3)]), v = frame.data[i];
      plus[i] = Math.min(255, v + d);
      minus[i] = Math.max(0, v - d);
    }
    return { plus: u8([H, W, 3], plus), minus: u8([H, W, 3], minus) };
  });
}

/**
 * Write a synthetic video as a one-clip dataset in the CamVid layout (`classes.json`, `clips.json`,
 * `<clip>/images/NNNN.png`, `<clip>/labels/NNNN.png`), so loaders and the evaluate stage can read it.
 */
export async function writeSyntheticCamvid(
  dir: string,
  video: SyntheticVideo,
  clip = "synthetic",
): Promise<void> {
  const [N, H, W] = video.gt.shape;
  const names = Array.from({ length: N }, (_, i) => `${String(i).padStart(4, "0")}.png`);
  for (let i = 0; i < N; i++) {
    await writeImage(
      path.join(dir, clip, "images", names[i]),
      u8([H, W, 3], video.frames.data.subarray(i * H * W * 3, (i + 1) * H * W * 3)),
    );
    writeLabelImage(
      path.join(dir, clip, "labels", names[i]),
      u8([H, W], video.gt.data.subarray(i * H * W, (i + 1) * H * W)),
      video.palette,
    );
  }
  const classes = {
    names: video.classes.map((c) => c.name),
    ids: video.classes.map((c) => c.id),
    void_id: 255,
    palette: video.palette,
  };
  fs.writeFileSync(path.join(dir, "classes.json"), JSON.stringify(classes, null, 1));
  fs.writeFileSync(
    path.join(dir, "clips.json"),
    JSON.stringify([{ clip, split: "val", frames: names }], null, 1),
  );
}
